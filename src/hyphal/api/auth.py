"""The bearer token of an API bound beyond loopback.

On loopback the API is open to local processes (as Mycelium's is). Bound anywhere else, every
request must carry ``Authorization: Bearer <token>`` (checked by ``hyphal.api.guard``); the token
is generated on first start, stored with mode 0600 next to the key file, and its path is logged
with how to use it.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("hyphal.api")


def read_or_create_token(path: Path) -> tuple[str, bool]:
    """The bearer token stored at ``path`` and whether it was just created (mode 0600, a fresh
    random token) because the file was missing or empty."""
    try:
        token = path.read_text().strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True


def load_or_create_token(path: Path) -> str:
    """The API token stored at ``path``, created (mode 0600) when missing."""
    token, created = read_or_create_token(path)
    if created:
        log.warning("created API token file %s", path)
    return token
