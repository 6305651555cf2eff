"""Soak run: a small mesh in namespaces with an unreachable static peer, a flapping peer and
background messages; prints the victim's RSS, open fds, link count and loop lag over time.

    sudo PYTHONPATH=src .venv/bin/python bench/soak.py --minutes 10 [--interval 10] [--assert]

Topology ``V-S V-F S-F``: V is the victim, S a steady neighbour, F is killed and restarted every
``--flap`` seconds. V also has a static peer on an address nothing answers. Every interval one
table row: elapsed s, RSS kB (/proc/PID/status), open fds (/proc/PID/fd), live links
(``hyphal_peers``) and ``hyphal_loop_lag_max_seconds`` from V's Prometheus metrics (``n/a`` when
the daemon does not export it). With ``--assert`` it exits 1 when RSS grew by more than
``--max-rss-growth-kb`` after warm-up, fds exceeded ``--max-fds`` or links exceeded ``--max-links``.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hyphal.testing.netlab import Node, Topology, has_route

# A closed port on the victim's own loopback: every dial is refused at once and no packet
# leaves the namespace.
UNREACHABLE_PEER = "tcp://[::1]:9"
METRICS_ADDR = "127.0.0.1:9990"


@dataclass
class Sample:
    elapsed: float
    rss_kb: int
    fds: int
    links: int | None
    loop_lag: float | None


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+|NaN)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


def sample(victim: Node, started: float) -> Sample:
    pid = victim.pid
    if pid is None or not victim.running:
        raise RuntimeError("the victim daemon died:\n" + victim.log_tail())
    scraped = victim.exec(["curl", "-s", "-m", "5", f"http://{METRICS_ADDR}/metrics"], timeout=10)
    text = scraped.stdout if scraped.returncode == 0 else ""
    links = metric(text, "hyphal_peers")
    return Sample(
        elapsed=time.monotonic() - started,
        rss_kb=rss_kb(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        links=None if links is None else int(links),
        loop_lag=metric(text, "hyphal_loop_lag_max_seconds"),
    )


def row(s: Sample) -> str:
    lag = "n/a" if s.loop_lag is None else f"{s.loop_lag * 1000:.1f}"
    links = "n/a" if s.links is None else str(s.links)
    return f"{s.elapsed:8.0f} {s.rss_kb:10d} {s.fds:6d} {links:>6} {lag:>12}"


def send_message(src: Node, dst: Node, n: int) -> None:
    body = {"dst": {"pk": dst.public_key}, "payload": base64.b64encode(b"soak %d" % n).decode()}
    src.api("POST", "/api/v1/messages", json=body, timeout=10)


def violations(samples: list[Sample], args: argparse.Namespace) -> list[str]:
    """The stated bounds, checked against samples taken after the warm-up sample."""
    base, rest = samples[0], samples[1:] or samples
    found = []
    growth = max(s.rss_kb for s in rest) - base.rss_kb
    if growth > args.max_rss_growth_kb:
        found.append(f"RSS grew by {growth} kB (bound {args.max_rss_growth_kb} kB)")
    fds = max(s.fds for s in samples)
    if fds > args.max_fds:
        found.append(f"{fds} open fds (bound {args.max_fds})")
    links = max((s.links for s in samples if s.links is not None), default=0)
    if links > args.max_links:
        found.append(f"{links} live links (bound {args.max_links})")
    return found


def soak(args: argparse.Namespace, workdir: Path) -> list[Sample]:
    topo = Topology.build(
        "V-S V-F S-F",
        start=True,
        workdir=workdir,
        node_args={"V": ["--peers", UNREACHABLE_PEER, "--metrics-api-address", METRICS_ADDR]},
    )
    samples: list[Sample] = []
    try:
        v, s, f = topo.node("V"), topo.node("S"), topo.node("F")
        topo.wait_until(lambda: has_route(v, f) and has_route(s, v), timeout=30)
        print(f"{'elapsed':>8} {'RSS kB':>10} {'fds':>6} {'links':>6} {'loop lag ms':>12}")
        started = time.monotonic()
        end = started + args.minutes * 60
        next_sample = started + args.warmup
        next_flap = started + args.flap
        sent = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_flap:
                f.restart()
                next_flap = now + args.flap
            if now >= next_sample:
                samples.append(sample(v, started))
                print(row(samples[-1]), flush=True)
                next_sample = now + args.interval
            send_message(s, v, sent)
            sent += 1
            time.sleep(1.0 / args.rate)
        samples.append(sample(v, started))
        print(row(samples[-1]), flush=True)
        print(f"{sent} background messages; F restarted every {args.flap:.0f} s", flush=True)
    finally:
        topo.close()
    return samples


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=10.0, help="run length (default 10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between table rows")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before the first row")
    p.add_argument("--flap", type=float, default=8.0, help="seconds between restarts of F")
    p.add_argument("--rate", type=float, default=5.0, help="background messages per second")
    p.add_argument("--workdir", type=Path, default=Path("/tmp") / f"hyphal-soak-{os.getpid()}")
    p.add_argument("--assert", dest="check", action="store_true", help="check the bounds")
    p.add_argument("--max-rss-growth-kb", type=int, default=20_000)
    p.add_argument("--max-fds", type=int, default=64)
    p.add_argument("--max-links", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    samples = soak(args, args.workdir)
    if not args.check:
        return 0
    found = violations(samples, args)
    for v in found:
        print("BOUND VIOLATED:", v, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
