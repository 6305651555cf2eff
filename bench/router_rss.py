"""Memory (RSS and PSS) of a real daemon holding ``--prefixes`` routed prefixes, ours against an
older commit in the same run.

For each side, a real daemon (``python -m hyphal run --no-tun``, ``PYTHONPATH`` on that side's
``src``; the old side is a temporary ``git worktree`` of ``--old``, removed afterwards) listens on
127.0.0.1 with a fresh key and a config of its own in a temporary directory (``no_dns = true``,
``max_routes`` at least twice ``--prefixes``), its API and metrics on free loopback ports. Then:

1. **Baseline.** Once it answers ``GET /api/v1/admin``, the API is warmed (``/admin/status``,
   ``/admin/routes/selected``, ``/metrics`` once each, so the baseline already holds what the
   first requests allocate), the daemon is left idle for ``--settle`` seconds, and VmRSS and
   RssAnon (``/proc/PID/status``) and Pss (``/proc/PID/smaps_rollup``) are sampled; the
   baseline is the median of the samples. RSS is the headline; RssAnon (the private heap, no
   file pages) is the least noisy; Pss also divides shared library pages among every process
   mapping them, so other Python processes on the machine move it (±10 MB seen).
2. **Links.** ``--links`` (4) real links are opened (:class:`hyphal.testing.livelink.LiveLink`:
   the real handshake, a Hello every 0.25 s, an IHU for each of the daemon's Hellos, everything
   else the daemon sends read and dropped). The bench waits until ``/admin/peers`` shows an RTT
   for each of them, i.e. the daemon counts them usable neighbours.
3. **Injection.** Over every link, the same ``--prefixes`` prefixes are announced, each
   originated by its own key (router id = key + 8 random bytes, prefix = the key's /64) with a
   valid XEdDSA signature, at metric ``100 * (i + 1)`` on link ``i``: each prefix gets one route
   per link, as at degree 4, one selected and the others kept as fallbacks. Keys and
   signatures are made once per run in this process and both sides get the same pre-encoded
   payloads (60 update TLVs each, under the daemon's 8192-byte ``max_payload_size``).
4. **Ready.** Polled every 0.5 s: ``/admin/status`` ``counts.routes`` (selected) must reach
   ``--prefixes`` and ``counts.fallbackRoutes`` ``--prefixes * (links - 1)``. The time from the
   first update sent to that moment is the injection time.
5. **Measurement.** After ``--settle`` seconds more, RSS and PSS are sampled every 0.25 s for
   ``--sample-seconds`` (5) without touching the API; the table shows the maximum and the final
   sample. Afterwards ``/admin/routes/selected`` is read once to check that every prefix is
   still reachable (a finite metric) and the router's counters (``/metrics``) that nothing was
   refused (over budget, bad signature, table full): a side with refusals or a lost link fails.

**Budget.** The daemon takes ``tlv_rate`` 8192 TLVs a second per neighbour with a
``tlv_burst`` of 131072 saved up (``RoutingParams``; not a config key). The bench paces every
link at ``--pace`` (default 4096) update TLVs a second, half the rate, so it never draws on the
burst, whatever ``--prefixes``; at the default size the injection therefore takes at least
10000 / 4096 = 2.4 s (the links are fed round robin, in parallel). ``--pace 0`` sends as fast
as the sockets take it (fine up to the burst: the daemon's TLV budget allows 131072 at once).

**Expiry.** Updates advertise an interval of 120 s (the daemon's ``max_advertised_interval``),
so a route lives 3.5 x 120 = 420 s unrefreshed; a background thread re-sends every link's full
table (at the same pace) every 60 s, so no route expires however long the run takes.

Output: a table per side (``ours`` is this checkout's ``src``, with any uncommitted changes)
with baseline RSS, RSS with the prefixes (max and final), the delta, bytes per prefix
(``(final - baseline) / prefixes``) and per route (``/ (prefixes * links)``), PSS and RssAnon
bytes per prefix alike, and the injection time. ``--json`` prints every sample and counter as
JSON instead.

    python bench/router_rss.py                          # ours vs 1163c28, 10000 prefixes, 4 links
    python bench/router_rss.py --prefixes 500 --old HEAD~3
    python bench/router_rss.py --keep --json            # keep the daemons' logs and configs

Everything stays on 127.0.0.1; no root is needed. Each side takes about 30-60 s at 10,000
prefixes on a 2-core machine (10,000 signature checks for 40,000 updates, then the settling
and sampling); making the keys and signatures takes about 6 s more. On a shared machine run
it as ``nice -n 10 flock /tmp/hyphal-heavy.lock .venv/bin/python bench/router_rss.py``.
Processes (their whole process group) and temporary directories are removed on any exit,
Ctrl-C and SIGTERM included; ``--keep`` keeps the directory with the logs (the worktree is
removed all the same).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hyphal.testing.livelink import LiveLink  # noqa: E402
from hyphal.testing.loopback import daemon_argv, free_port  # noqa: E402

DEFAULT_OLD = "1163c28"
PER_PAYLOAD = 60
SEQNO = 7
INTERVAL_CS = 12000  # 120 s: the daemon's max_advertised_interval
REFRESH_EVERY = 60.0  # re-send every table this often (routes live 3.5 x 120 s)
STARTUP = 90.0  # a busy 2-core machine can take tens of seconds to import a daemon
REFUSALS = (
    "tlvs_over_budget",
    "updates_rejected_table_full",
    "updates_rejected_prefix",
    "updates_unknown_mandatory",
)


# ----------------------------------------------------------------------------- payloads


def make_payloads(prefixes: int, links: int) -> tuple[list[list[bytes]], float]:
    """One list of pre-encoded control payloads per link (the same prefixes, metric
    ``100 * (link + 1)``), and the seconds it took to make the keys and signatures."""
    from hyphal.testing.announcements import signed_announcements
    from hyphal.wire.control import Update, encode_tlv

    t0 = time.perf_counter()
    issued = int(time.time())
    rows = signed_announcements(prefixes, SEQNO, issued)
    took = time.perf_counter() - t0
    per_link = []
    for link in range(links):
        metric = 100 * (link + 1)
        tlvs = [
            encode_tlv(Update(prefix, SEQNO, metric, INTERVAL_CS, 0, rid, sig, (), issued))
            for prefix, rid, sig in rows
        ]
        per_link.append(
            [b"".join(tlvs[i : i + PER_PAYLOAD]) for i in range(0, len(tlvs), PER_PAYLOAD)]
        )
    return per_link, took


def send_tables(
    links: list[LiveLink], tables: list[list[bytes]], pace: float, stop: threading.Event
) -> None:
    """Every link's payloads, round robin, each link at most ``pace`` TLVs a second."""
    t0 = time.monotonic()
    sent = 0
    for index in range(max(len(t) for t in tables)):
        for link, table in zip(links, tables, strict=True):
            if index < len(table):
                link.send_payload(table[index])
        sent += PER_PAYLOAD
        if stop.is_set():
            return
        if pace > 0:
            ahead = t0 + sent / pace - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


# ----------------------------------------------------------------------------- the daemon


def memory_kib(pid: int) -> tuple[int, int, int]:
    """(VmRSS, Pss, RssAnon) of ``pid`` in KiB."""
    rss = pss = anon = -1
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("RssAnon:"):
            anon = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss, anon


@dataclass
class Daemon:
    """``python -m hyphal run`` from ``src`` in ``work``, in its own process group."""

    src: Path
    work: Path
    max_routes: int
    port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "hyphal.toml"
        config.write_text(f"no_dns = true\nmax_routes = {self.max_routes}\n")
        argv = daemon_argv(
            self.work / "priv_key.bin",
            self.port,
            self.api_port,
            config=config,
            metrics_port=self.metrics_port,
        )
        env = dict(os.environ, PYTHONPATH=str(self.src), HOME=str(self.work))
        env.pop("HYPHAL_API_ADDR", None)
        with (self.work / "daemon.log").open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait(lambda: self.api("/admin") is not None, STARTUP, "the API to answer")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def api(self, path: str, timeout: float = 10.0) -> Any:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.api_port}/api/v1{path}", timeout=timeout)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def metrics(self) -> dict[str, float]:
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "hyphal_router_events_total":
                    out[sample.labels["event"]] = sample.value
        return out

    def log_tail(self, lines: int = 30) -> str:
        text = (self.work / "daemon.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, cond: Callable[[], bool], within: float, what: str) -> float:
        t0 = time.monotonic()
        while not cond():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon ({self.src}) exited with {self.proc.returncode} waiting for "
                    f"{what}:\n{self.log_tail()}"
                )
            if time.monotonic() - t0 > within:
                raise RuntimeError(f"daemon ({self.src}): no {what} within {within:.0f} s")
            time.sleep(0.5)
        return time.monotonic() - t0

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _sayer(to_stderr: bool) -> Callable[[str], None]:
    """Progress lines: on stdout, or on stderr when stdout carries the JSON."""

    def say(line: str) -> None:
        print(line, file=sys.stderr if to_stderr else sys.stdout, flush=True)

    return say


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def sample(pid: int, seconds: float, every: float = 0.25) -> list[tuple[int, int, int]]:
    out = []
    end = time.monotonic() + seconds
    while True:
        out.append(memory_kib(pid))
        if time.monotonic() >= end:
            return out
        time.sleep(every)


# ----------------------------------------------------------------------------- one side


def run_side(
    label: str, src: Path, work: Path, tables: list[list[bytes]], args: argparse.Namespace
) -> dict[str, Any]:
    prefixes: int = args.prefixes
    nlinks = len(tables)
    daemon = Daemon(src, work, max(65536, 2 * prefixes))
    links: list[LiveLink] = []
    stop = threading.Event()
    refresher: threading.Thread | None = None
    log = _sayer(args.json)
    try:
        t_start = time.monotonic()
        daemon.start()
        started = time.monotonic() - t_start
        for path in ("/admin/status", "/admin/routes/selected", "/admin/peers"):
            daemon.api(path)
        daemon.metrics()
        time.sleep(args.settle)
        base = sample(daemon.pid, 2.0, 0.5)
        log(f"{label}: daemon pid {daemon.pid} up in {started:.1f} s, baseline sampled")

        links = [LiveLink("127.0.0.1", daemon.port) for _ in range(nlinks)]

        def usable() -> bool:
            rows = daemon.api("/admin/peers") or []
            return sum(1 for r in rows if r.get("rttMs") is not None) >= nlinks

        daemon.wait(usable, 30, f"{nlinks} usable links")
        time.sleep(args.settle)
        with_links = sample(daemon.pid, 2.0, 0.5)

        t0 = time.monotonic()
        send_tables(links, tables, args.pace, stop)
        sent_in = time.monotonic() - t0

        def refresh() -> None:
            while not stop.wait(REFRESH_EVERY):
                send_tables(links, tables, args.pace, stop)

        refresher = threading.Thread(target=refresh, name="refresh", daemon=True)
        refresher.start()

        counts: dict[str, int] = {}

        def ready() -> bool:
            for link in links:
                if not link.alive:
                    raise RuntimeError(f"{label}: a link went down: {link.closed_reason}")
            status = daemon.api("/admin/status", timeout=30) or {}
            counts.update(status.get("counts", {}))
            selected, fallback = counts.get("routes", 0), counts.get("fallbackRoutes", 0)
            return selected >= prefixes and fallback >= prefixes * (nlinks - 1)

        daemon.wait(ready, args.timeout, f"{prefixes} selected routes")
        injected_in = time.monotonic() - t0
        log(f"{label}: {prefixes} prefixes x {nlinks} links in {injected_in:.1f} s; sampling")
        time.sleep(args.settle)
        loaded = sample(daemon.pid, args.sample_seconds)

        selected = daemon.api("/admin/routes/selected", timeout=60) or []
        reachable = sum(1 for r in selected if r.get("metric") != "infinite")
        events = daemon.metrics()
        refused = {k: events.get(k, 0.0) for k in REFUSALS if events.get(k, 0.0)}
        refused.update({k: v for k, v in events.items() if k.startswith("updates_rejected") and v})
        lost = [link.closed_reason for link in links if not link.alive]
        if reachable < prefixes or refused or lost:
            raise RuntimeError(
                f"{label}: {reachable} of {prefixes} reachable, refused {refused}, lost "
                f"links {lost}:\n{daemon.log_tail()}"
            )
    finally:
        stop.set()
        for link in links:
            link.close()
        if refresher is not None:
            refresher.join(5)
        daemon.stop()

    rss0 = statistics.median(m[0] for m in base)
    pss0 = statistics.median(m[1] for m in base)
    anon0 = statistics.median(m[2] for m in base)
    rss_final, pss_final, anon_final = loaded[-1]
    return {
        "side": label,
        "src": str(src),
        "prefixes": prefixes,
        "links": nlinks,
        "startupSeconds": round(started, 2),
        "sendSeconds": round(sent_in, 2),
        "injectionSeconds": round(injected_in, 2),
        "baselineRssKiB": rss0,
        "baselinePssKiB": pss0,
        "baselineAnonKiB": anon0,
        "linksRssKiB": statistics.median(m[0] for m in with_links),
        "linksPssKiB": statistics.median(m[1] for m in with_links),
        "rssMaxKiB": max(m[0] for m in loaded),
        "rssFinalKiB": rss_final,
        "pssMaxKiB": max(m[1] for m in loaded),
        "anonFinalKiB": anon_final,
        "anonBytesPerPrefix": (anon_final - anon0) * 1024 / prefixes,
        "pssFinalKiB": pss_final,
        "bytesPerPrefix": (rss_final - rss0) * 1024 / prefixes,
        "bytesPerRoute": (rss_final - rss0) * 1024 / (prefixes * nlinks),
        "pssBytesPerPrefix": (pss_final - pss0) * 1024 / prefixes,
        "baselineSamples": base,
        "linksSamples": with_links,
        "loadedSamples": loaded,
        "counts": counts,
        "reachable": reachable,
        "routerEvents": events,
        "linkTlvsReceived": [link.tlvs_received for link in links],
    }


# ----------------------------------------------------------------------------- driver


@contextlib.contextmanager
def worktree(rev: str, where: Path) -> Iterator[Path]:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev], check=True
    )
    try:
        yield where / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
        )
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    first = results[0]
    head = (
        f"router_rss: daemon memory with {first['prefixes']} prefixes x {first['links']} links "
        f"({first['prefixes'] * first['links']} routes), MB = MiB"
    )
    cols = (
        f"{'side':<16} {'base RSS':>8} {'+links':>7} {'RSS max':>8} {'RSS end':>8} {'delta':>7} "
        f"{'B/prefix':>8} {'B/route':>7} {'base PSS':>8} {'PSS end':>8} {'PSS B/pfx':>9} "
        f"{'anon B/pfx':>10} {'inject s':>8}"
    )
    lines = [head, cols]
    for r in results:
        lines.append(
            f"{r['side']:<16} {mb(r['baselineRssKiB']):>8} {mb(r['linksRssKiB']):>7} "
            f"{mb(r['rssMaxKiB']):>8} "
            f"{mb(r['rssFinalKiB']):>8} {mb(r['rssFinalKiB'] - r['baselineRssKiB']):>7} "
            f"{r['bytesPerPrefix']:8.0f} {r['bytesPerRoute']:7.0f} "
            f"{mb(r['baselinePssKiB']):>8} {mb(r['pssFinalKiB']):>8} "
            f"{r['pssBytesPerPrefix']:9.0f} {r['anonBytesPerPrefix']:10.0f} "
            f"{r['injectionSeconds']:8.1f}"
        )
    if len(results) == 2:
        a, b = results
        lines.append(
            f"ours / old bytes per prefix: {a['bytesPerPrefix'] / b['bytesPerPrefix']:.2f}"
            if b["bytesPerPrefix"] > 0
            else "old side grew by nothing"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--old", default=DEFAULT_OLD, help=f"commit to compare with [{DEFAULT_OLD}]")
    ap.add_argument("--old-src", type=Path, help="use this src directory as the old side")
    ap.add_argument("--no-old", action="store_true", help="measure ours only")
    ap.add_argument("--prefixes", type=int, default=10000, help="prefixes announced [10000]")
    ap.add_argument("--links", type=int, default=4, help="links, i.e. routes per prefix [4]")
    ap.add_argument(
        "--pace", type=float, default=4096.0, help="update TLVs/s per link, 0 = unpaced [4096]"
    )
    ap.add_argument("--settle", type=float, default=3.0, help="idle seconds before sampling [3]")
    ap.add_argument(
        "--sample-seconds", type=float, default=5.0, help="seconds of RSS samples, loaded [5]"
    )
    ap.add_argument(
        "--timeout", type=float, default=600.0, help="most seconds to wait for the routes [600]"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (daemon logs, configs)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if args.prefixes < 1 or args.links < 1:
        ap.error("--prefixes and --links must be positive")

    say = _sayer(args.json)
    signal.signal(signal.SIGTERM, _terminate)  # so the finally clauses below run
    tmp = Path(tempfile.mkdtemp(prefix="router-rss-"))
    results: list[dict[str, Any]] = []
    try:
        tables, took = make_payloads(args.prefixes, args.links)
        say(f"{args.prefixes} keys and signatures in {took:.1f} s")
        results.append(run_side("ours", ROOT / "src", tmp / "ours", tables, args))
        if not args.no_old:
            label = f"old {args.old}" if args.old_src is None else f"old {args.old_src}"
            if args.old_src is not None:
                results.append(run_side(label, args.old_src, tmp / "old", tables, args))
            else:
                with worktree(args.old, tmp / "worktree") as old_src:
                    results.append(run_side(label, old_src, tmp / "old", tables, args))
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps({"results": results}, indent=1))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
