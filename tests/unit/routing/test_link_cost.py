"""Link cost from RTT samples: queueing spikes do not move it, a lasting change does."""

from __future__ import annotations

from hyphal.routing.neighbour import Neighbour
from hyphal.routing.params import DEFAULT_PARAMS


def _fed(samples: list[float]) -> tuple[Neighbour, list[bool]]:
    nb = Neighbour(1, 0.0)
    changed = [nb.rtt_sample(s, DEFAULT_PARAMS) for s in samples]
    return nb, changed


def test_spikes_behind_a_dump_leave_the_cost_alone() -> None:
    # 20 ms RTT; two samples delayed 30 ms by a full dump queued ahead of them on the stream.
    nb, changed = _fed([0.020] * 8 + [0.050, 0.048] + [0.020] * 8)
    assert changed[0] is True
    assert not any(changed[1:])
    assert nb.cost == 100  # 10 ms one-way in 100 µs units


def test_lasting_increase_is_adopted_after_the_window() -> None:
    window = DEFAULT_PARAMS.rtt_window
    nb, changed = _fed([0.020] * window + [0.060] * window)
    assert not any(changed[1 : 2 * window - 1])
    assert changed[-1] is True
    assert nb.cost == 300


def test_decrease_is_adopted_at_once() -> None:
    nb, changed = _fed([0.060] * 4 + [0.020])
    assert changed[-1] is True
    assert nb.cost == 100
