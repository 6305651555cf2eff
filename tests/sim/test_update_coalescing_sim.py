"""Cold start on the real routers: coalescing sends fewer update TLVs, never fewer than the
minimum that delivers the tables (one per prefix per directed link, split horizon excluded)."""

from __future__ import annotations

from dataclasses import replace

from hyphal.routing.params import DEFAULT_PARAMS
from hyphal.sim import topologies
from hyphal.sim.scenarios import Run


def _cold(window: float) -> tuple[int, int, int]:
    top = topologies.build("geo", 40, 4, seed=2)
    run = Run(
        top,
        "cold-start",
        seed=2,
        params=replace(DEFAULT_PARAMS, update_coalesce=window),
        window=6.0,
        sample_dt=0.2,
    )
    result = run.run()
    assert result.events[0].unconverged == 0 and result.max_loops == 0
    return result.cold_start_update_tlvs, result.cold_start_min_update_tlvs, len(top.edges)


def test_coalescing_cuts_cold_start_updates() -> None:
    sent_now, minimum, links = _cold(0.0)
    sent_coalesced, minimum_coalesced, _ = _cold(DEFAULT_PARAMS.update_coalesce)
    # Every router holds a route to each of the 40 prefixes and tells every other neighbour.
    assert minimum == minimum_coalesced == 40 * 2 * links - 40 * 39
    assert minimum <= sent_coalesced < sent_now


def test_rates_mean_and_busiest_second() -> None:
    from hyphal.sim.scenarios import _rates

    # 10 nodes; 1000 B/node/s for 2 s, then 5000 B/node/s for 1 s.
    sent = [(0.0, 0, 10), (1.0, 10_000, 10), (2.0, 20_000, 10), (3.0, 70_000, 10)]
    mean, peak = _rates(sent)
    assert abs(mean - 70_000 / 10 / 3) < 1e-6 and abs(peak - 5000) < 1e-6


def test_control_rates_idle_churn_and_peak_are_reported() -> None:
    top = topologies.build("geo", 30, 3, seed=3)
    run = Run(
        top, "churn", seed=3, window=3.0, warmup=6.0, sample_dt=0.2, churn_rate=2.0, churn_time=4.0
    )
    result = run.run()
    churn = result.churn_bytes_per_node_s
    peak = result.peak_after_event_bytes_per_node_s
    assert churn is not None and peak is not None
    # Hellos and IHUs alone are ~1.2 kB/node/s; churn adds routing traffic on top.
    assert 0 < result.steady_bytes_per_node_s < churn <= peak
    assert all(e.ctl_peak_bytes_per_node_s >= e.ctl_bytes_per_node_s > 0 for e in result.events)
