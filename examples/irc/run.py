#!/usr/bin/env python3
"""Build the Magnet-style IRC network on hyphal in network namespaces, show it working, and tear
it all down (also on failure or Ctrl-C). Needs root, iproute2 and Debian's inspircd.

    sudo .venv/bin/python examples/irc/run.py            # build, demo, tear down
    sudo .venv/bin/python examples/irc/run.py --keep     # ... then stay up until Ctrl-C
    sudo .venv/bin/python examples/irc/run.py --no-failover

The layout and the steps are in docs/examples/irc-network.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if "PYTHONPATH" not in os.environ:  # this checkout's hyphal, for us and the daemons we start
    os.environ["PYTHONPATH"] = str(HERE.parents[1] / "src")
    sys.path.insert(1, os.environ["PYTHONPATH"])

import ircnet  # noqa: E402

from hyphal.testing.netlab import TopologyError  # noqa: E402


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def demo(net: ircnet.MagnetNetwork, failover: bool) -> None:
    eu_leaf, us_leaf = (str(net.node(f"leaf_{r}").address) for r in ircnet.REGIONS)
    say(f"hub {net.node('hub').address}; leaves: eu {eu_leaf}, us {us_leaf}")
    say(f"IRC servers linked over the overlay: {sorted(net.linked_servers())}")
    net.start_services()
    for region in ircnet.REGIONS:
        say(
            f"ingr_{region} listens on {net.ingress_public_address(region, 4)}:6667 and "
            f"[{net.ingress_public_address(region, 6)}]:6667 and sends new users to "
            f"{net.choice(f'ingr_{region}')} (its region's leaf)"
        )
    alice, _ = net.land("alice", "eu", family=4)
    bob, _ = net.land("bob", "us", family=6)
    say(f"alice (user_eu, {net.user_address('eu', 4)}) landed on {alice.server}")
    say(f"bob (user_us, {net.user_address('us', 6)}) landed on {bob.server}")
    for user in (alice, bob):
        user.conn.join(ircnet.CHANNEL)
    net.wait(lambda: any(e.source.nick == "bob" for e in alice.of_type("join")), 10, "join")
    alice.conn.privmsg(ircnet.CHANNEL, "hello from eu")
    net.wait(lambda: bob.said("hello from eu"), 10, "bob hears alice")
    say(f"bob heard alice in {ircnet.CHANNEL}, across eu leaf -> hub -> us leaf")
    host, server = net.whois(bob, "alice")
    say(f"bob's WHOIS alice: host {host} on {server} (alice's own address, via PROXY v2)")
    if not failover:
        return
    net.leaf("eu").stop()
    say("stopped the eu leaf's InspIRCd")
    carol, took = net.land("carol", "eu", family=4, timeout=15)
    say(
        f"carol at eu's ingress landed on {carol.server} {took:.2f} s later; bob still connected: "
        f"{bob.connected}"
    )
    restarted = time.monotonic()
    net.leaf("eu").start()
    net.wait_linked(timeout=30)
    n = 0
    dave, _ = net.land("dave", "eu", family=6, timeout=15)
    while dave.server != ircnet.leaf_server("eu"):
        n += 1
        net.pump(0.2)
        dave, _ = net.land(f"dave{n}", "eu", family=6, timeout=15)
    say(
        f"eu leaf back: new eu users land on it again {time.monotonic() - restarted:.1f} s after "
        "its restart"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="stay up after the demo until Ctrl-C")
    parser.add_argument("--no-failover", action="store_true", help="skip the leaf failover part")
    parser.add_argument("--workdir", type=Path, help="keys, logs and state (default: a temp dir)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(
            "run.py needs root (network namespaces): sudo .venv/bin/python examples/irc/run.py",
            file=sys.stderr,
        )
        return 2
    if shutil.which(ircnet.INSPIRCD) is None:
        print(f"{ircnet.INSPIRCD} not found: apt-get install inspircd", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, _terminate)  # also when started where SIGINT was ignored
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hyphal-irc-"))
    say(f"building the network in namespaces (logs in {workdir})")
    net: ircnet.MagnetNetwork | None = None
    try:
        net = ircnet.MagnetNetwork.build(workdir=workdir)
        demo(net, failover=not args.no_failover)
        if args.keep:
            say("up; connect as a user, e.g.:")
            for region in ircnet.REGIONS:
                say(
                    f"  ip netns exec {net.node(f'user_{region}').ns} irssi -c "
                    f"{net.ingress_public_address(region, 4)} -p 6667   (or any IRC client)"
                )
            say("Ctrl-C tears everything down")
            while True:
                net.pump(1.0)
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except TopologyError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if net is not None:
            net.close()
        say("torn down: namespaces, hyphal daemons and InspIRCd servers are gone")


if __name__ == "__main__":
    sys.exit(main())
