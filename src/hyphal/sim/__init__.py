"""Discrete-event simulator driving real ``hyphal.routing.Router`` objects (see docs/simulator.md).

Modules: ``engine`` (event queue, simulated link layer), ``links``, ``topologies``, ``scenarios``
(runs and results), ``metrics`` (measured against Dijkstra) and ``plotting``. The ``hyphal sim``
typer command is :func:`hyphal.cli.sim.sim`.
"""
