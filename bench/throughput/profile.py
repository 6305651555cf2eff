"""``--profile``: py-spy on both hyphal daemons during one extra run, and its own-time summary.

The summariser reads py-spy's collapsed stacks (``frame;frame;... count``) and totals own time
(the leaf frame) by function, by source line and, with native frames, by kind of work.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from .lab import Pair
from .measure import measure_iperf
from .results import SystemResult

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
PY_SPY = Path(sys.executable).parent / "py-spy"


@dataclass
class ProfileSummary:
    role: str
    raw_file: str
    svg_file: str | None
    samples: int
    idle_samples: int
    expected_samples: int
    top_functions: list[tuple[str, int, float]]
    top_lines: list[tuple[str, int, float]]
    categories: list[tuple[str, int, float]]


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short_func(name: str) -> str:
    """Rust v0 mangled names (cryptography's bindings) are long; keep their readable tail."""
    return "…" + name[-28:] if name.startswith("_RN") and len(name) > 40 else name


def _short_file(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
# Rough own-time buckets for native profiles, by leaf symbol prefix (first match wins).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "syscalls (TUN and socket read/write)",
        ("write ", "writev ", "read ", "readv ", "send", "recv", "__libc_write", "__libc_read"),
    ),
    ("AES-GCM", ("ossl_aes", "aesni_", "ossl_gcm", "gcm_", "EVP_", "evp_", "ossl_ghash")),
    (
        "copies (memcpy/memmove, unresolved libc)",
        ("[libc.so.6 internal]", "memcpy", "memmove", "__memmove", "__memcpy"),
    ),
    ("malloc/free", ("malloc", "free", "brk", "realloc", "mmap", "munmap", "_int_", "sbrk")),
)
OTHER = "Python interpreter, uvloop and the rest"


def categorize(name: str) -> str:
    if name.startswith("[") and "<- " in name:  # an unresolved libc symbol, by its caller
        caller = name.split("<- ", 1)[1]
        return CATEGORIES[3][0] if caller.startswith(CATEGORIES[3][1]) else CATEGORIES[2][0]
    for label, prefixes in CATEGORIES:
        if name.startswith(prefixes):
            return label
    return OTHER


Rows = list[tuple[str, int, float]]


def summarize_raw(path: Path, top: int, native: bool) -> tuple[int, int, Rows, Rows, Rows]:
    """Own-time (leaf frame) totals by function and by source line from py-spy collapsed stacks.

    Returns (samples counted, idle samples dropped, by function, by line, by category; the
    categories only mean something with native frames). py-spy drops idle
    samples itself in Python-only mode; with native frames it cannot, so there we keep only the
    event-loop thread (stacks through ``run_daemon``; the others are idle executor threads) and
    count samples whose leaf is the epoll wait as idle.
    """
    by_func: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if native and (
            not any(f.startswith("run_daemon ") for f in frames) or leaf.startswith(IDLE_LEAVES)
        ):
            idle += count
            continue
        total += count
        if leaf.startswith("0x") and len(frames) > 1:
            # An unresolved symbol in a stripped library (in libc: memcpy/memmove variants);
            # name it after its caller so the row still says which line pays for it.
            lib = leaf.rsplit("(", 1)[-1].rstrip(")")
            caller = _FRAME.match(frames[-2])
            where = (
                f"{_short_func(caller['func'])} ({_short_file(caller['file'])}:"
                f"{caller['line'] or '?'})"
                if caller
                else frames[-2]
            )
            by_func[f"[{lib} internal] <- {where.rsplit(':', 1)[0]})"] += count
            by_line[f"[{lib} internal] <- {where}"] += count
            continue
        m = _FRAME.match(leaf)
        if m is None:
            by_func[leaf] += count
            by_line[leaf] += count
            continue
        where, func = _short_file(m["file"]), _short_func(m["func"])
        by_func[f"{func} ({where})"] += count
        by_line[f"{func} ({where}:{m['line'] or '?'})"] += count

    by_category: Counter[str] = Counter()
    for name, count in by_func.items():
        by_category[categorize(name)] += count

    def rows(counter: Counter[str], n: int | None = top) -> Rows:
        return [(k, v, 100 * v / max(1, total)) for k, v in counter.most_common(n)]

    return total, idle, rows(by_func), rows(by_line), rows(by_category, None)


def profile_hyphal(pair: Pair, args: argparse.Namespace, addr: str, result: SystemResult) -> None:
    """One extra single-stream run with py-spy on both daemons; stores the summary on ``args``."""
    if not PY_SPY.exists():
        print(f"profile: {PY_SPY} missing (run ./scripts/setup.sh)", file=sys.stderr)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rate = 100
    duration = args.time + 1
    spies: list[tuple[str, Path, Path | None]] = []
    spy_procs: list[subprocess.Popen[bytes]] = []
    try:
        for role, node in (("sender", pair.a), ("receiver", pair.b)):
            raw = RESULTS / f"profile-{stamp}-hyphal-{role}.txt"
            svg = RESULTS / f"profile-{stamp}-hyphal-{role}.svg" if role == "sender" else None
            common = ["record", "-p", str(node.pid), "-r", str(rate), "-d", str(duration)]
            # The raw recorder unwinds native frames too (it must pause the daemon for that), so
            # time inside uvloop, OpenSSL and syscall wrappers is split out; the SVG one only reads.
            outputs = [("raw", raw, ["--native"] if args.native else ["--nonblocking"])]
            if svg is not None:
                outputs.append(("flamegraph", svg, ["--nonblocking"]))
            for fmt, out, mode in outputs:
                spy = subprocess.Popen(
                    [str(PY_SPY), *common, *mode, "-f", fmt, "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                spy_procs.append(spy)
            spies.append((role, raw, svg))
        time.sleep(0.5)
        profiled = measure_iperf(pair, addr, 1, args.time)
        for spy in spy_procs:
            try:
                spy.wait(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
    finally:
        for spy in spy_procs:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
    summaries = []
    for role, raw, svg in spies:
        if not raw.exists():
            print(f"profile: py-spy wrote no {raw}", file=sys.stderr)
            continue
        total, idle, funcs, lines, categories = summarize_raw(raw, args.top, args.native)
        summaries.append(
            ProfileSummary(
                role,
                str(raw.relative_to(REPO)),
                str(svg.relative_to(REPO)) if svg is not None and svg.exists() else None,
                total,
                idle,
                rate * duration,
                funcs,
                lines,
                categories if args.native else [],
            )
        )
    args.profile_result = {"profiled_tcp1": asdict(profiled), "profiles": summaries}
    result.note = (result.note + "; " if result.note else "") + (
        f"profiled run (py-spy on both daemons): {profiled.gbps:.2f} Gbit/s"
    )
