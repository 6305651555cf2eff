"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's postgresql binaries, a data
directory in a temp dir, listening only on a unix socket in that directory, run as the
``postgres`` user when we are root (PostgreSQL refuses to run as root). Stopped and deleted by
:meth:`PgCluster.stop` (the pytest fixture and the bench call it even on failure).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from hyphal.testing.loopback import free_port

PG_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


def pg_bin() -> Path | None:
    """The directory of initdb/pg_ctl, or None when PostgreSQL is not installed."""
    for d in PG_BIN_DIRS:
        if Path(d, "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PgCluster:
    def __init__(self, user: str = "postgres") -> None:
        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="hyphal-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()  # only names the socket file; no TCP listener
        self.db = "hyphal"
        self._as: list[str] = []
        if os.geteuid() == 0:
            info = pwd.getpwnam(user)
            os.chown(self.dir, info.pw_uid, info.pw_gid)
            self._as = ["runuser", "-u", user, "--"]
            self.role = user
        else:
            self.role = pwd.getpwuid(os.geteuid()).pw_name
        os.chmod(self.dir, 0o755)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args], check=True, capture_output=True, timeout=120, cwd=self.dir
        )

    def start(self) -> str:
        """Create and start the cluster; returns its ``postgresql://`` URL."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.role,
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = (
            f"-k {self.dir} -p {self.port} -c listen_addresses='' -c fsync=off "
            "-c max_connections=50 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._run(
            str(self.bin / "createdb"),
            "-h",
            str(self.dir),
            "-p",
            str(self.port),
            "-U",
            self.role,
            self.db,
        )
        return self.url

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}@/{self.db}?host={self.dir}&port={self.port}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
