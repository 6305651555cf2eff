"""Database fixtures for the mapping tests: every test that takes ``db_url`` runs twice, on a
SQLite file and on a real PostgreSQL (a throwaway cluster this session starts and stops)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hyphal.testing.postgres import PgCluster, pg_bin

sys.path.insert(0, str(Path(__file__).resolve().parent))  # mapping_results


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if pg_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/setup.sh installs the postgresql package")
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fresh_pg(pg_cluster: PgCluster) -> str:
    """A new, empty database in the session's cluster."""
    return fresh_pg_database(pg_cluster)


def fresh_pg_database(cluster: PgCluster) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.replace(f"/{cluster.db}?", f"/{name}?")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "map.db")
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return fresh_pg_database(cluster)
