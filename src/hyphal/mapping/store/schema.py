"""The store's schema, one set of tables in two dialects (docs/mapping.md "Data model").

- ``results``: one row per measurement (traceroute or ping), its fields as columns plus the
  canonical JSON (``raw``) so nothing a worker sent is lost;
- ``hops``: one row per reply or timeout (result id, ttl, index at that ttl, from, rtt, reply
  TTL, ICMP type/code, quoted TTL, flow id);
- ``edges``: (a, b, flow id) with first/last seen and a count, what the dashboard draws;
- ``result_ids``: every id ever stored (idempotent ingest, also across rotated files);
- ``measurements``: requests made through the measurement API, and who runs them;
- ``workers`` and ``counters``: what ``/stats`` and ``hyphal map status`` show.

SQLite keeps ``results`` and ``hops`` in a separate, rotated file (attached as ``r``); the other
tables live in the main file and survive rotation. PostgreSQL partitions ``results`` and
``hops`` by ingest time (weekly ranges, created on demand, dropped by retention).
"""

from __future__ import annotations

from hyphal.mapping.db import Migration

_RESULT_COLUMNS = """
    id TEXT NOT NULL, received {REAL} NOT NULL, started {REAL} NOT NULL, ended {REAL} NOT NULL,
    type TEXT NOT NULL, worker TEXT NOT NULL, worker_key TEXT, region TEXT, target TEXT NOT NULL,
    af INTEGER NOT NULL, proto TEXT NOT NULL, flow_id BIGINT NOT NULL, src_port INTEGER,
    dst_port INTEGER, cycle_id TEXT, measurement_id TEXT, destination_replied {BOOL} NOT NULL,
    stop_reason TEXT NOT NULL, ping_sent INTEGER, ping_received INTEGER, hop_count INTEGER,
    probes INTEGER NOT NULL, raw TEXT NOT NULL"""
_HOP_COLUMNS = """
    result_id TEXT NOT NULL, received {REAL} NOT NULL, ttl INTEGER NOT NULL, idx INTEGER NOT NULL,
    from_ip TEXT, rtt {REAL}, reply_ttl INTEGER, icmp_type INTEGER, icmp_code INTEGER,
    quoted_ttl INTEGER, flow_id BIGINT, timeout {BOOL} NOT NULL"""

_MAIN = """
CREATE TABLE result_ids (id TEXT PRIMARY KEY, received {REAL} NOT NULL);
CREATE INDEX result_ids_received ON result_ids (received);
CREATE TABLE edges (a TEXT NOT NULL, b TEXT NOT NULL, flow_id BIGINT NOT NULL,
    first_seen {REAL} NOT NULL, last_seen {REAL} NOT NULL, count BIGINT NOT NULL,
    PRIMARY KEY (a, b, flow_id));
CREATE TABLE measurements (id TEXT PRIMARY KEY, created {REAL} NOT NULL, status TEXT NOT NULL,
    type TEXT NOT NULL, target TEXT NOT NULL, proto TEXT NOT NULL, worker TEXT, region TEXT,
    params TEXT NOT NULL, claimed_by TEXT, claimed_at {REAL}, finished {REAL},
    results INTEGER NOT NULL DEFAULT 0);
CREATE INDEX measurements_status ON measurements (status, created);
CREATE TABLE workers (worker TEXT PRIMARY KEY, region TEXT, worker_key TEXT,
    last_result {REAL} NOT NULL, results BIGINT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
"""

RESULTS_FILE_SQLITE = f"""
CREATE TABLE IF NOT EXISTS r.file_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS r.results ({_RESULT_COLUMNS}, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS r.results_started ON results (started);
CREATE INDEX IF NOT EXISTS r.results_received ON results (received);
CREATE INDEX IF NOT EXISTS r.results_target ON results (target, received);
CREATE INDEX IF NOT EXISTS r.results_worker ON results (worker, started);
CREATE INDEX IF NOT EXISTS r.results_measurement ON results (measurement_id);
CREATE TABLE IF NOT EXISTS r.hops ({_HOP_COLUMNS}, PRIMARY KEY (result_id, ttl, idx));
CREATE INDEX IF NOT EXISTS r.hops_from ON hops (from_ip);
""".replace("{REAL}", "REAL").replace("{BOOL}", "INTEGER")

_PG_PARTITIONED = f"""
CREATE TABLE results ({_RESULT_COLUMNS}, PRIMARY KEY (received, id)) PARTITION BY RANGE (received);
CREATE INDEX results_started ON results (started);
CREATE INDEX results_target ON results (target, received);
CREATE INDEX results_worker ON results (worker, started);
CREATE INDEX results_measurement ON results (measurement_id);
CREATE INDEX results_id ON results (id);
CREATE TABLE hops ({_HOP_COLUMNS}, PRIMARY KEY (received, result_id, ttl, idx))
    PARTITION BY RANGE (received);
CREATE INDEX hops_from ON hops (from_ip);
CREATE INDEX hops_result ON hops (result_id);
CREATE TABLE partitions (name TEXT PRIMARY KEY, lo DOUBLE PRECISION NOT NULL,
    hi DOUBLE PRECISION NOT NULL);
"""

MIGRATIONS = [
    Migration(
        1,
        _MAIN.replace("{REAL}", "REAL").replace("{BOOL}", "INTEGER"),
        (_MAIN + _PG_PARTITIONED)
        .replace("{REAL}", "DOUBLE PRECISION")
        .replace("{BOOL}", "BOOLEAN"),
    ),
]
