"""The result store: idempotent ingest, normalised traces/hops/edges, SQLite with rotation or
PostgreSQL with partitions and retention, queries and the measurement API.

``schema`` (tables, migrations), ``backend`` (the store), ``hops`` (hops to the feeder),
``app`` (HTTP).
"""
