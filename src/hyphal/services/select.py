"""Ordering instances for a new flow: nearest first, weighted shuffling among near-equal ones.

*Near-equal*: instances whose route metric is less than ``max(NEAR_ABS, best // NEAR_DIV)``
above the lowest metric of their band (``best``). Link costs follow RTT in milliseconds with a
floor of 10 per hop, so that is "about the same distance": under 5 ms apart, or under an eighth
of the path; one more hop (at least 10) is never near-equal. Bands are formed from the nearest outward; inside a band the order is a
weighted random permutation (Efraimidis-Spirakis: key ``u ** (1 / weight)``, highest first), so
an instance of weight 200 is first about twice as often as one of weight 100. Pure: the caller
passes the random source.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hyphal.services.directory import Instance

NEAR_ABS = 5
NEAR_DIV = 8


def near_equal(best: int, metric: int) -> bool:
    return metric - best < max(NEAR_ABS, best // NEAR_DIV)


def order(instances: Sequence[Instance], rng: random.Random) -> list[Instance]:
    """``instances`` nearest first, shuffled by weight inside each near-equal band."""
    by_metric = sorted(instances, key=lambda i: (i.metric, i.public_key))
    out: list[Instance] = []
    i = 0
    while i < len(by_metric):
        best = by_metric[i].metric
        j = i
        while j < len(by_metric) and near_equal(best, by_metric[j].metric):
            j += 1
        band = by_metric[i:j]
        if len(band) > 1:
            keyed = [
                (rng.random() ** (1.0 / max(1, inst.weight)), n) for n, inst in enumerate(band)
            ]
            keyed.sort(reverse=True)
            band = [band[n] for _, n in keyed]
        out.extend(band)
        i = j
    return out
