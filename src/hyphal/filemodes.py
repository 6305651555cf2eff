"""Files that hold secrets: private directories, 0600 files, and warnings about loose modes.

Node keys, network keys, the API token and the message store (payloads in plaintext) must not
be readable by other local users. New ones are created private; an existing one that others may
read or write is used, with a warning that says the ``chmod`` to run (as ``wg`` does).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("hyphal.files")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def loose_mode(path: Path) -> int | None:
    """The mode of ``path`` if group or others have any access to it, else None (also when it
    does not exist)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def warn_if_loose(path: Path, what: str) -> bool:
    """Log a warning when ``path`` (a ``what``: "node key file", ...) is open to others.

    Returns True when it warned."""
    mode = loose_mode(path)
    if mode is None:
        return False
    fix = "chmod 700" if path.is_dir() else "chmod 600"
    log.warning(
        "%s %s has mode %04o: other local users may read it; run %s %s",
        what,
        path,
        mode,
        fix,
        path,
    )
    return True


def private_dir(path: Path, what: str) -> None:
    """Create ``path`` (and missing parents) with mode 0700; warn if it exists and is open."""
    if not path.exists():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is masked by the umask
        log.info("created %s %s (mode 0700)", what, path)
        return
    warn_if_loose(path, what)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600: create it empty, or tighten an open one.

    Used before SQLite opens a database, because SQLite gives its ``-wal`` and ``-shm`` files
    the mode of the database file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
            if mode & 0o077:
                log.warning("%s had mode %04o; set it to 0600 (it holds messages)", path, mode)
    finally:
        os.close(fd)


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data`` in a mode 0600 file (temporary file + rename;
    missing parents are created). OSError when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)
