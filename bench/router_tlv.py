"""Per-update-TLV processing cost of the real Router, ours against an older commit, one run.

A hub router with four usable neighbours (peer ids 1-4, made usable by answering its hellos
with IHUs) is fed pre-encoded, validly signed update payloads through ``handle_control``, the
way a link delivers them (about 60 TLVs per payload, as ``max_payload_size`` batches them).
Every phase sends one TLV per prefix for ``--prefixes`` prefixes, each originated by its own
key, and is timed with ``perf_counter`` around each call, plus one ``on_timer`` call after the
phase (so updates a router holds back to coalesce them are paid for in the same phase):

================ ===============================================================================
new prefix       neighbour 1 announces every prefix (metric 1000): a new entry, selection, a
                 triggered update to neighbours 2-4
worse route      neighbour 3 announces them at metric 2000: an unfeasible fallback, nothing sent
refreshed        neighbour 1 repeats its updates unchanged: a refresh of the selected route
better route     neighbour 2 announces them at metric 100: a switch, triggered updates and a
                 poisoned reverse to neighbour 2
retraction       neighbour 2 retracts them: the selected route is lost, the fallbacks are
                 unfeasible, so a retraction to every neighbour and seqno requests
================ ===============================================================================

Signatures are checked through the simulator's memoising verifier, warmed before timing (as in
``hyphal sim``, where one verifier serves every router): the numbers are the router's own cost,
not XEdDSA's (about 0.25 ms per signature on a cache miss, the same in both versions).

The default mode runs this script twice in subprocesses, with ``PYTHONPATH`` set to this
checkout's ``src`` and to a temporary ``git worktree`` of ``--old`` (removed afterwards), on the
same payloads, and prints both side by side (the median of ``--repeat`` fresh hubs per phase)::

    python bench/router_tlv.py                       # ours vs 84c2d6c
    python bench/router_tlv.py --old cf8aaa3 --json
    python bench/router_tlv.py --profile             # + cProfile top entries of ours
    python bench/router_tlv.py --worker --src DIR --spec FILE   # one side (used internally)

Run it under ``flock /tmp/hyphal-heavy.lock`` on a shared machine: it is short (a few seconds)
but CPU-bound, and a busy core moves both sides, not their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OLD = "84c2d6c"
PHASES = ("new prefix", "worse route", "refreshed", "better route", "retraction")
TARGET_US = 10.0
PER_PAYLOAD = 60
SEQNO = 7


def make_spec(prefixes: int, path: Path) -> None:
    """Sign one announcement per prefix (own key each) and pickle what the workers need."""
    sys.path.insert(0, str(ROOT / "src"))
    from hyphal.testing.announcements import signed_announcements

    issued = int(time.time())
    rows = [
        (prefix, router_id, SEQNO, issued, signature)
        for prefix, router_id, signature in signed_announcements(prefixes, SEQNO, issued)
    ]
    path.write_bytes(pickle.dumps(rows))


# ----------------------------------------------------------------------------- worker side


def _worker(spec: Path, repeat: int, profile: int) -> dict[str, Any]:
    """Measure with whatever ``hyphal`` PYTHONPATH gives; return µs per TLV per phase."""
    import random

    from hyphal.crypto.signing import XEdDSASigner
    from hyphal.identity import NodeIdentity
    from hyphal.routing.params import DEFAULT_PARAMS
    from hyphal.routing.router import Router
    from hyphal.routing.types import SendControl
    from hyphal.sim.engine import MemoVerifier
    from hyphal.wire.control import IHU, Hello, Update, decode_payload, encode_tlv

    rows: list[tuple[bytes, bytes, int, int, bytes]] = pickle.loads(spec.read_bytes())
    verifier = MemoVerifier()

    def payloads(metric: int, retract: bool = False) -> list[bytes]:
        tlvs = []
        for prefix, router_id, seqno, issued, signature in rows:
            if retract:
                update = Update(prefix, seqno, 0xFFFF, 3000, 0, router_id, b"")
            else:
                update = Update(prefix, seqno, metric, 3000, 0, router_id, signature, (), issued)
            tlvs.append(encode_tlv(update))
        return [b"".join(tlvs[i : i + PER_PAYLOAD]) for i in range(0, len(tlvs), PER_PAYLOAD)]

    feeds = {
        "new prefix": (1, payloads(1000)),
        "worse route": (3, payloads(2000)),
        "refreshed": (1, payloads(1000)),
        "better route": (2, payloads(100)),
        "retraction": (2, payloads(0, retract=True)),
    }
    from hyphal.wire.control import announcement_message

    for prefix, router_id, seqno, issued, signature in rows:  # warm the shared memo
        verifier.verify(
            router_id[:32], announcement_message(prefix, seqno, router_id, issued), signature
        )
    hub_ident = NodeIdentity.generate()
    signer = XEdDSASigner(hub_ident.private_bytes())
    hello_tlv = encode_tlv(Hello(1, 25, 0))

    def hub(now: float) -> Router:
        router = Router(
            hub_ident.public_key, signer, DEFAULT_PARAMS, now, random.Random(1), verifier=verifier
        )
        for peer in (1, 2, 3, 4):
            for action in router.neighbour_up(peer, now):
                if isinstance(action, SendControl):
                    for tlv in decode_payload(action.payload):
                        if isinstance(tlv, Hello):
                            answer = encode_tlv(IHU(tlv.seqno, 25, tlv.timestamp))
                            router.handle_control(peer, answer, now + 0.002)
        return router

    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    sent: dict[str, int] = {}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    for _ in range(repeat):
        now = 10.0
        router = hub(now)
        now += 0.01
        for phase in PHASES:
            peer, batch = feeds[phase]
            for other in (1, 2, 3, 4):  # keep every neighbour heard from (dead_interval)
                router.handle_control(other, hello_tlv, now)
            before = router.counters["updates_sent"] + router.counters["retractions_sent"]
            total = 0.0
            if profiler is not None:
                profiler.enable()
            for payload in batch:
                now += 1e-5
                t0 = time.perf_counter()
                router.handle_control(peer, payload, now)
                total += time.perf_counter() - t0
            now += 0.1  # past any coalescing window: what is held back goes out here
            t0 = time.perf_counter()
            router.on_timer(now)
            total += time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
            times[phase].append(total / len(rows) * 1e6)
            sent[phase] = (
                router.counters["updates_sent"] + router.counters["retractions_sent"] - before
            )
            now += 0.01
    result: dict[str, Any] = {
        "usPerTlv": {phase: statistics.median(v) for phase, v in times.items()},
        "updateTlvsSent": sent,
        "prefixes": len(rows),
        "repeat": repeat,
    }
    result["usPerTlv"]["all phases"] = statistics.mean(result["usPerTlv"][p] for p in PHASES)
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(profile)
        result["profile"] = out.getvalue()
    return result


# ----------------------------------------------------------------------------- driver side


def _run_side(src: Path, spec: Path, repeat: int, profile: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--src",
        str(src),
        "--spec",
        str(spec),
        "--repeat",
        str(repeat),
        "--profile-top",
        str(profile),
    ]
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker for {src} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The first result with each phase's least µs per TLV over all ``results``."""
    best = dict(results[0])
    best["usPerTlv"] = {
        phase: min(r["usPerTlv"][phase] for r in results) for phase in results[0]["usPerTlv"]
    }
    best["rounds"] = len(results)
    return best


def _table(ours: dict[str, Any], old: dict[str, Any], old_rev: str) -> str:
    lines = [
        f"router_tlv: µs per update TLV (best of {ours['rounds']} runs of the median of "
        f"{ours['repeat']} hubs, "
        f"{ours['prefixes']} prefixes per phase, degree 4); target <= {TARGET_US:g} µs",
        f"{'phase':<14} {'ours':>8} {old_rev:>10} {'ours/old':>9} {'sent ours':>10} "
        f"{'sent old':>9}",
    ]
    for phase in (*PHASES, "all phases"):
        a, b = ours["usPerTlv"][phase], old["usPerTlv"][phase]
        sa = ours["updateTlvsSent"].get(phase, "")
        sb = old["updateTlvsSent"].get(phase, "")
        lines.append(f"{phase:<14} {a:8.2f} {b:10.2f} {a / b:9.2f} {sa!s:>10} {sb!s:>9}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old", default=DEFAULT_OLD, help="commit to compare with [84c2d6c]")
    ap.add_argument("--old-src", type=Path, help="use this src directory as the old side")
    ap.add_argument("--prefixes", type=int, default=2000, help="prefixes per phase [2000]")
    ap.add_argument("--repeat", type=int, default=5, help="fresh hubs per side [5]")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs per side [2]")
    ap.add_argument("--profile", action="store_true", help="print cProfile top entries of ours")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile-top", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.spec is None:
            ap.error("--worker needs --spec")
        print(json.dumps(_worker(args.spec, args.repeat, args.profile_top)))
        return
    with tempfile.TemporaryDirectory(prefix="router-tlv-") as tmp:
        spec = Path(tmp) / "spec.pickle"
        make_spec(args.prefixes, spec)
        worktree: Path | None = None
        old_src = args.old_src
        if old_src is None:
            worktree = Path(tmp) / "old"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(worktree),
                    args.old,
                ],
                check=True,
            )
            old_src = worktree / "src"
        try:
            # Alternate the sides (ours, old, ours, old) and keep each phase's best: load from
            # other processes on a shared machine then hits both sides alike.
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "old": []}
            for _ in range(args.rounds):
                runs["ours"].append(_run_side(ROOT / "src", spec, args.repeat, 0))
                runs["old"].append(_run_side(old_src, spec, args.repeat, 0))
            ours, old = _best(runs["ours"]), _best(runs["old"])
            if args.profile:
                ours["profile"] = _run_side(ROOT / "src", spec, 1, 25)["profile"]
        finally:
            if worktree is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    check=False,
                )
    label = args.old if args.old_src is None else str(args.old_src)
    if args.json:
        print(json.dumps({"ours": ours, "old": old, "oldRev": label}, indent=1))
        return
    print(_table(ours, old, label[:10]))
    if args.profile:
        print("\ncProfile of ours (all phases, sorted by own time):")
        print(ours["profile"])


if __name__ == "__main__":
    main()
