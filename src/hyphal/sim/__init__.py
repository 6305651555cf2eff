"""Discrete-event simulator driving real ``hyphal.routing.Router`` objects (see docs/simulator.md).

Modules: ``engine`` (event queue, simulated link layer), ``links``, ``topologies``, ``scenarios``
(runs and results), ``metrics`` (measured against Dijkstra), ``plotting`` and ``command`` (the
``hyphal sim`` typer command, exported as :func:`hyphal.sim.command.sim`).
"""
