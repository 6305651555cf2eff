"""TUN data-plane throughput and latency: hyphal vs the raw veth and other overlays, in one run.

Two network namespaces A and B of :mod:`hyphal.testing.netlab` (``Topology("A-B")``) joined by
one veth pair (A dials B on ``fd00:<tag>:0::2``). For each system the benchmark brings up its
two endpoints, one in each namespace, and measures from A to B:

* ``iperf3`` TCP, one stream and ``-P 4`` (receiver side, ``end.sum_received``), ``--repeat`` times;
* ``ping -6`` RTT (warm-up, then ``--pings`` pings at ``--ping-interval``): avg, p50, p99;
* CPU of the two endpoint daemons during the single-stream runs (``/proc/<pid>/stat``).

Systems: ``veth`` (baseline, no overlay), ``hyphal`` (``hyphal run`` with its TUN), and, only when
their binaries are installed, ``yggdrasil`` (peering only with each other: no multicast discovery,
no admin socket, AllowedPublicKeys set) and ``wireguard-go`` (configured with ``wg``). Nothing is
installed here; a missing system gets a "not installed" row.

``--profile`` adds one extra single-stream hyphal run with ``py-spy record`` attached to both
daemons (non-blocking sampling), writes a flame graph SVG and the raw collapsed stacks to
``bench/results/`` and prints the top functions and lines by own time. The profiled run's
throughput is reported separately so sampling never skews the table.

Everything (processes, namespaces) is removed on exit, including Ctrl-C and SIGTERM. Needs root.
Run it through ``bench/throughput.sh``, or ``python -m bench.throughput`` from the repository
root; see ``bench/README.md`` for how to read the output.

Modules: ``run`` (CLI entry and orchestration), ``lab`` (the namespace pair on netlab),
``systems`` (one driver per system), ``measure`` (ping, iperf3, CPU), ``profile`` (py-spy and
its summariser), ``report`` (the tables) and ``results`` (the result records).
"""
