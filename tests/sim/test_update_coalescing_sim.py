"""Cold start on the real routers: coalescing sends fewer update TLVs, never fewer than the
minimum that delivers the tables (one per prefix per directed link, split horizon excluded)."""

from __future__ import annotations

from dataclasses import replace

from hyphal.routing.params import DEFAULT_PARAMS
from hyphal.sim import topologies
from hyphal.sim.scenarios import Run


def _cold(window: float) -> tuple[int, int, int]:
    top = topologies.build("geo", 40, 4, seed=2)
    run = Run(top, "cold-start", seed=2, params=replace(DEFAULT_PARAMS, update_coalesce=window),
              window=6.0, sample_dt=0.2)
    result = run.run()
    assert result.events[0].unconverged == 0 and result.max_loops == 0
    return result.cold_start_update_tlvs, result.cold_start_min_update_tlvs, len(top.edges)


def test_coalescing_cuts_cold_start_updates() -> None:
    sent_now, minimum, links = _cold(0.0)
    sent_coalesced, minimum_coalesced, _ = _cold(DEFAULT_PARAMS.update_coalesce)
    # Every router holds a route to each of the 40 prefixes and tells every other neighbour.
    assert minimum == minimum_coalesced == 40 * 2 * links - 40 * 39
    assert minimum <= sent_coalesced < sent_now
