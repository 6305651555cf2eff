"""Scenarios: what happens to the network and when, and the run that measures it.

Every scenario starts all nodes at t = 0 (each dials its links after a connection set-up time
plus a random start offset), lets the network settle for a warm-up window, then applies its
events, each followed by an observation window sampled every ``sample_dt`` seconds.

=================== ==========================================================================
cold-start          only the start; convergence is measured from t = 0
link-failure        1 % of the links (at least one) fail silently at once
node-failure        a random node dies silently; later the busiest (highest-degree) node does
partition-and-heal  every link between two halves fails silently; later they all come back
node-restart        a node dies silently and restarts 3 s later with a new router id suffix
churn               nodes leave (silently) and come back at ``churn_rate`` events per second
                    for ``churn_time``; convergence is measured from the end of the churn
latency-change      10 % of the links become 2-5x slower; routes must move off them
=================== ==========================================================================
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hyphal.routing.params import DEFAULT_PARAMS, RoutingParams
from hyphal.sim.engine import Simulator
from hyphal.sim.links import DEFAULT_BANDWIDTH_BPS
from hyphal.sim.metrics import (
    Meter,
    NodeState,
    Sample,
    convergence_times,
    percentile,
    router_memory,
    update_tlvs_minimum,
    update_tlvs_sent,
)
from hyphal.sim.topologies import Topology

SCENARIOS = (
    "cold-start",
    "link-failure",
    "node-failure",
    "partition-and-heal",
    "node-restart",
    "churn",
    "latency-change",
)

START_JITTER_S = 0.5
"""Nodes boot within this many seconds of each other at t = 0."""
DEFAULT_WARMUP_S = 15.0
DEFAULT_WINDOW_S = 10.0
MAX_WARMUP_EXTENSIONS = 4
RESTART_DOWNTIME_S = 3.0
LATENCY_WINDOW_S = 30.0
"""Latency changes need RTT smoothing to catch up before routes move, so they watch longer."""

Progress = Callable[[float, float], None]


@dataclass
class EventResult:
    """Convergence after one event, over every alive node (seconds from the event)."""

    label: str
    at: float
    window: float
    affected: int
    """Nodes whose next hops changed at all within the window."""
    conv_median: float
    conv_p99: float
    conv_max: float
    unconverged: int
    """Nodes not correct and stable at the end of the window."""
    min_reach_fraction: float
    max_loops: int
    ctl_bytes_per_node_s: float = 0.0
    """Control bytes per alive node per second over the window (framing included)."""
    ctl_peak_bytes_per_node_s: float = 0.0
    """The same over the window's busiest second (sampled at the sample instants)."""


@dataclass
class RunResult:
    topology: str
    nodes: int
    links: int
    degree: int
    scenario: str
    seed: int
    sim_time: float
    wall_time: float
    warmup_wall_time: float
    sample_dt: float
    destinations: int
    """Destinations evaluated per sample (all nodes, or a fixed random sample)."""
    events: list[EventResult]
    samples: list[Sample]
    final: Sample
    max_loops: int
    control_msgs_per_node_s: float
    control_bytes_per_node_s: float
    steady_bytes_per_node_s: float
    """Control bytes per node per second over the last window's second half (background load)."""
    peak_table_entries: int
    memory_per_node: float
    memory_method: str
    engine_events: int
    timer_stalls: int
    """Router deadlines not in the future right after on_timer (see engine); should be 0."""
    signature_checks: int
    signatures_computed: int
    churn_bytes_per_node_s: float | None = None
    """Control bytes per node per second while the churn ran (churn scenario only)."""
    peak_after_event_bytes_per_node_s: float | None = None
    """The busiest second after any scenario event (failures, heal, churn end), per node."""
    cold_start_update_tlvs: int = 0
    """Update TLVs (retractions included) sent from boot to the end of the warm-up."""
    cold_start_min_update_tlvs: int = 0
    """The fewest that deliver the tables held then (see metrics.update_tlvs_minimum)."""
    params: dict[str, float | int] = field(default_factory=dict)


@dataclass
class _Window:
    label: str
    at: float
    states: list[tuple[float, NodeState]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    sent: list[tuple[float, int, int]] = field(default_factory=list)
    """(time, bytes sent by all nodes so far, alive nodes) at each sample."""


class Run:
    """Drives one scenario on one simulator and collects the results."""

    def __init__(
        self,
        topology: Topology,
        scenario: str,
        *,
        seed: int = 1,
        params: RoutingParams = DEFAULT_PARAMS,
        window: float | None = None,
        warmup: float | None = None,
        sample_dt: float | None = None,
        dest_sample: int | None = None,
        churn_rate: float | None = None,
        churn_time: float = 20.0,
        jitter: float = 0.0,
        loss: float = 0.0,
        bandwidth_bps: float | None = None,
        progress: Progress | None = None,
        share_announcements: bool = True,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        n = topology.n
        self.topology = topology
        self.scenario = scenario
        self.seed = seed
        self.sim = Simulator(
            topology,
            seed=seed,
            params=params,
            jitter=jitter,
            loss=loss,
            bandwidth_bps=bandwidth_bps if bandwidth_bps is not None else DEFAULT_BANDWIDTH_BPS,
            share_announcements=share_announcements,
        )
        if dest_sample is None and n > 400:
            dest_sample = 256
        self.meter = Meter(self.sim, dest_sample, seed)
        self.window = window if window is not None else DEFAULT_WINDOW_S
        self.warmup = warmup if warmup is not None else DEFAULT_WARMUP_S
        self.sample_dt = sample_dt if sample_dt is not None else (0.1 if n <= 400 else 0.2)
        self.churn_rate = churn_rate if churn_rate is not None else max(0.5, n / 500.0)
        self.churn_time = churn_time
        self.rng = random.Random(f"scenario-{seed}")
        self.progress = progress
        self.samples: list[Sample] = []
        self.events: list[EventResult] = []
        self._windows: list[_Window] = []
        self._planned_end = 0.0
        self._wall_start = time.perf_counter()
        self.warm_wall = 0.0
        self.cold_tlvs = 0
        self.cold_min_tlvs = 0
        self._play_wall = time.perf_counter()

    # ------------------------------------------------------------------ sampling

    def _sample(self, win: _Window, *, stretch: bool = False) -> Sample:
        sample, state = self.meter.sample(stretch=stretch, tables=stretch)
        win.states.append((self.sim.now, state))
        win.sent.append((self.sim.now, self.sim.total_sent()[1], sample.alive))
        win.samples.append(sample)
        self.samples.append(sample)
        return sample

    def _observe(self, win: _Window, until: float, dt: float) -> None:
        """Advance to ``until``, sampling every ``dt``; the last sample includes stretch."""
        sim = self.sim
        steps = max(1, math.ceil((until - sim.now) / dt - 1e-9))
        start = sim.now
        for k in range(1, steps + 1):
            t = min(until, start + k * dt)
            sim.run_until(t)
            self._sample(win, stretch=(k == steps))
            if self.progress is not None:
                self.progress(sim.now, self._planned_end)

    def _close(self, win: _Window) -> EventResult:
        conv, affected = convergence_times(win.at, win.states)
        finite = conv[np.isfinite(conv)]
        result = EventResult(
            label=win.label,
            at=win.at,
            window=win.states[-1][0] - win.at if win.states else 0.0,
            affected=affected,
            conv_median=percentile(conv, 50) if conv.size else float("nan"),
            conv_p99=percentile(conv, 99) if conv.size else float("nan"),
            conv_max=float(conv.max()) if conv.size else float("nan"),
            unconverged=int(conv.size - finite.size),
            min_reach_fraction=min((s.reach_fraction for s in win.samples), default=1.0),
            max_loops=max((s.loops for s in win.samples), default=0),
        )
        result.ctl_bytes_per_node_s, result.ctl_peak_bytes_per_node_s = _rates(win.sent)
        self.events.append(result)
        return result

    def _event(
        self, label: str, action: Callable[[], None], window: float, dt: float | None = None
    ) -> EventResult:
        win = _Window(label, self.sim.now)
        action()
        self._sample(win)
        self._observe(win, win.at + window, dt or self.sample_dt)
        return self._close(win)

    def _converged(self, win: _Window, span: int = 3) -> bool:
        if len(win.states) < span:
            return False
        tail = win.states[-span:]
        last = tail[-1][1]
        return all(
            bool(np.all(st.correct[last.alive]))
            and bool(np.all(st.fingerprint[last.alive] == last.fingerprint[last.alive]))
            for _, st in tail
        )

    # ------------------------------------------------------------------ scenario steps

    def _start_all(self, window: float) -> EventResult:
        sim = self.sim

        def boot() -> None:
            for i in range(len(sim.nodes)):
                sim.start_node(i, connect_jitter=START_JITTER_S)

        coarse = self.sample_dt if len(sim.nodes) <= 400 else max(self.sample_dt, 0.5)
        win = _Window("cold start", sim.now)
        boot()
        self._sample(win)
        self._observe(win, window, coarse)
        extensions = 0
        while not self._converged(win) and extensions < MAX_WARMUP_EXTENSIONS:
            extensions += 1
            self._planned_end += 5.0
            self._observe(win, sim.now + 5.0, 1.0)
        return self._close(win)

    def _pick_random(self) -> int:
        return self.rng.choice(self.sim.alive_indices())

    def _busiest(self) -> int:
        alive = set(self.sim.alive_indices())
        degree = {i: 0 for i in alive}
        for link in self.sim.links:
            if link.up and link.a in alive and link.b in alive:
                degree[link.a] += 1
                degree[link.b] += 1
        return max(sorted(degree), key=lambda i: degree[i])

    def _halves(self) -> tuple[set[int], set[int]]:
        """Two halves of the nodes: by longitude on geo topologies, else by BFS order."""
        top = self.topology
        n = top.n
        if top.positions:
            order = sorted(range(n), key=lambda i: top.positions[i][1])
        else:
            adj = top.adjacency()
            order, seen = [0], {0}
            k = 0
            while k < len(order):
                for y in sorted(adj[order[k]]):
                    if y not in seen:
                        seen.add(y)
                        order.append(y)
                k += 1
        half = set(order[: n // 2])
        return half, set(range(n)) - half

    def run(self) -> RunResult:
        """Warm up, play the scenario, and return the results."""
        self.warm()
        return self.play()

    def _plan(self) -> float:
        w = self.window
        return {
            "cold-start": 0.0,
            "link-failure": w,
            "node-failure": 2 * w,
            "partition-and-heal": 2 * w,
            "node-restart": RESTART_DOWNTIME_S + w,
            "churn": self.churn_time + w,
            "latency-change": max(w, LATENCY_WINDOW_S),
        }[self.scenario]

    def warm(self) -> None:
        """Start every node and observe the cold start (the whole run for ``cold-start``)."""
        self._wall_start = time.perf_counter()
        warm = self.window if self.scenario == "cold-start" else self.warmup
        self._planned_end = warm + self._plan()
        self._start_all(warm)
        self.cold_tlvs = update_tlvs_sent(self.sim)
        self.cold_min_tlvs = update_tlvs_minimum(self.sim)
        self.warm_wall = time.perf_counter() - self._wall_start

    def play(self, scenario: str | None = None) -> RunResult:
        """Apply the scenario's events to the warmed-up network (``scenario`` may replace the
        one given at construction, e.g. in a process forked after :meth:`warm`)."""
        if scenario is not None:
            if scenario not in SCENARIOS:
                raise ValueError(f"unknown scenario {scenario!r}")
            self.scenario = scenario
            self._planned_end = self.sim.now + self._plan()
        sim = self.sim
        scen = self.scenario
        w = self.window
        self._play_wall = time.perf_counter()
        if self.events and self.events[-1].label != "cold start":
            # A second play on the same network: report only its own events (and the warm-up).
            self.events = self.events[:1]
        if scen == "link-failure":
            count = max(1, len(sim.links) // 100)
            victims = self.rng.sample(sim.links, count)

            def cut() -> None:
                for link in victims:
                    sim.fail_link(link, silent=True)

            self._event(f"{count} link(s) fail", cut, w)
        elif scen == "node-failure":
            self._event("random node dies", lambda: sim.kill_node(self._pick_random()), w)
            self._event("busiest node dies", lambda: sim.kill_node(self._busiest()), w)
        elif scen == "partition-and-heal":
            left, _ = self._halves()
            crossing = [lk for lk in sim.links if (lk.a in left) != (lk.b in left)]

            def split() -> None:
                for link in crossing:
                    sim.fail_link(link, silent=True)

            def heal() -> None:
                for link in crossing:
                    sim.heal_link(link)

            self._event(f"partition ({len(crossing)} links)", split, w)
            self._event("heal", heal, w)
        elif scen == "node-restart":
            victim = self.rng.choice(self.meter.dests)
            win = _Window("node dies (restarts 3 s later)", sim.now)
            sim.kill_node(victim)
            self._sample(win)
            self._observe(win, win.at + RESTART_DOWNTIME_S, self.sample_dt)
            self._close(win)
            self._event("node restarts", lambda: sim.start_node(victim), w)
        elif scen == "churn":
            self._churn(w)
        elif scen == "latency-change":
            count = max(1, len(sim.links) // 10)
            victims = self.rng.sample(sim.links, count)
            factors = [self.rng.uniform(2.0, 5.0) for _ in victims]

            def slow() -> None:
                for link, f in zip(victims, factors, strict=True):
                    sim.set_latency(link, link.latency * f)

            self._event(f"{count} links slower", slow, max(w, LATENCY_WINDOW_S))
        return self._result(self.warm_wall + time.perf_counter() - self._play_wall)

    def _churn(self, window: float) -> None:
        sim = self.sim
        n = len(sim.nodes)
        min_alive = max(2, int(0.9 * n))
        win = _Window(f"churn ({self.churn_rate:g}/s for {self.churn_time:g} s)", sim.now)
        self._sample(win)
        t = sim.now
        end = sim.now + self.churn_time
        dead: list[int] = []

        def churn_step() -> None:
            alive = sim.alive_indices()
            if dead and (len(alive) <= min_alive or self.rng.random() < 0.5):
                sim.start_node(dead.pop(self.rng.randrange(len(dead))))
            else:
                victim = self.rng.choice(alive)
                sim.kill_node(victim)
                dead.append(victim)

        while True:
            t += self.rng.expovariate(self.churn_rate)
            if t >= end:
                break
            sim.schedule(t, churn_step)
        self._observe(win, end, max(self.sample_dt, 0.5))
        self._close(win)
        self._event("churn stops", lambda: None, window)

    def _result(self, wall: float) -> RunResult:
        sim = self.sim
        n = len(sim.nodes)
        msgs, nbytes = sim.total_sent()
        duration = max(sim.now, 1e-9)
        final = self.samples[-1]
        # Background load: bytes sent in the second half of the last window.
        steady = self._steady_rate()
        alive = sim.alive_indices()
        mem_nodes = alive[:: max(1, len(alive) // 8)][:8]
        p = sim.params
        return RunResult(
            topology=self.topology.name,
            nodes=n,
            links=len(sim.links),
            degree=round(2 * len(sim.links) / max(1, n)),
            scenario=self.scenario,
            seed=self.seed,
            sim_time=sim.now,
            wall_time=wall,
            warmup_wall_time=self.warm_wall,
            sample_dt=self.sample_dt,
            destinations=len(self.meter.dests),
            events=self.events,
            samples=self.samples,
            final=final,
            max_loops=max(s.loops for s in self.samples),
            control_msgs_per_node_s=msgs / n / duration,
            control_bytes_per_node_s=nbytes / n / duration,
            steady_bytes_per_node_s=steady,
            peak_table_entries=self.meter.peak_table_entries,
            memory_per_node=router_memory(sim, mem_nodes),
            memory_method="deep sys.getsizeof over the router object graph (gc referents), "
            "mean of up to 8 routers at the end; shared params/verifier excluded",
            engine_events=sim.stats.events,
            timer_stalls=sim.stats.timer_stalls,
            signature_checks=sim.verifier.calls,
            signatures_computed=sim.verifier.computed,
            churn_bytes_per_node_s=next(
                (e.ctl_bytes_per_node_s for e in self.events if e.label.startswith("churn (")),
                None,
            ),
            peak_after_event_bytes_per_node_s=max(
                (e.ctl_peak_bytes_per_node_s for e in self.events[1:]), default=None
            ),
            cold_start_update_tlvs=self.cold_tlvs,
            cold_start_min_update_tlvs=self.cold_min_tlvs,
            params={
                "hello_interval": p.hello_interval,
                "dead_interval": p.dead_interval,
                "update_interval": p.update_interval,
                "hysteresis_rel": p.hysteresis_rel,
                "cost_floor": p.cost_floor,
                "update_coalesce": p.update_coalesce,
            },
        )

    def _steady_rate(self) -> float:
        """Control bytes/node/s over a quiet stretch run after the last window (2 s)."""
        sim = self.sim
        before = sim.total_sent()[1]
        t0 = sim.now
        sim.run_until(t0 + 2.0)
        after = sim.total_sent()[1]
        alive = max(1, len(sim.alive_indices()))
        return (after - before) / alive / 2.0


def _rates(sent: list[tuple[float, int, int]], span: float = 1.0) -> tuple[float, float]:
    """Mean and busiest-``span`` control bytes per alive node per second of a window."""
    if len(sent) < 2 or sent[-1][0] <= sent[0][0]:
        return 0.0, 0.0
    t0, b0, _ = sent[0]
    t1, b1, _ = sent[-1]
    alive = max(1, min(a for _, _, a in sent))
    mean = (b1 - b0) / alive / (t1 - t0)
    peak = 0.0
    j = 0
    for i in range(1, len(sent)):
        while j < i and sent[i][0] - sent[j + 1][0] >= span - 1e-9:
            j += 1
        dt = sent[i][0] - sent[j][0]
        if dt >= span - 1e-9:
            peak = max(peak, (sent[i][1] - sent[j][1]) / alive / dt)
    return mean, max(peak, mean) if peak == 0.0 else peak


def run_scenario(topology: Topology, scenario: str, **kwargs: object) -> RunResult:
    """Convenience wrapper: ``Run(topology, scenario, **kwargs).run()``."""
    return Run(topology, scenario, **kwargs).run()  # type: ignore[arg-type]
