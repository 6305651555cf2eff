"""The ingress state file: listeners added at run time (``hyphal ingress add`` / ``unwrap``, or
the API), so they survive a restart.

It sits beside the node's other state (``ingress.json`` next to the key file; ``ingress_file``
in the config sets another path; in-process test nodes have none). Each entry is written as the
``[[ingress]]`` or ``[[unwrap]]`` table that would declare it, and read back through the same
checks as the config file. Listeners from the config file are not stored: the config already
says them. The file is replaced atomically (temporary file + rename), mode 0600. A file that
cannot be read is logged, moved aside to ``ingress.json.bad`` and never silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from hyphal.filemodes import replace_private
from hyphal.ingress.spec import (
    IngressSpec,
    UnwrapSpec,
    ingress_from_dict,
    ingress_table,
    unwrap_from_dict,
    unwrap_table,
)

log = logging.getLogger("hyphal.ingress")

VERSION = 1
MAX_FILE = 256 * 1024

Spec = IngressSpec | UnwrapSpec


def load_listeners(path: Path | None) -> list[Spec]:
    """The listeners saved in ``path`` ([] when there is none or it cannot be read)."""
    if path is None or not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE} bytes")
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} ingress state file")
        ingress, unwrap = data.get("ingress", []), data.get("unwrap", [])
        if not isinstance(ingress, list) or not isinstance(unwrap, list):
            raise ValueError("ingress and unwrap must be lists")
        specs: list[Spec] = [
            unwrap_from_dict(entry, f"{path}: unwrap {i + 1}") for i, entry in enumerate(unwrap)
        ]
        specs += [
            ingress_from_dict(entry, f"{path}: ingress {i + 1}") for i, entry in enumerate(ingress)
        ]
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # SpecError is a ValueError
        aside = path.with_name(path.name + ".bad")
        log.error(
            "cannot read the ingress state file %s (%s); moved it to %s and starting with the "
            "config's listeners only; add the others again with 'hyphal ingress add'",
            path,
            exc,
            aside,
        )
        with contextlib.suppress(OSError):
            path.replace(aside)
        return []
    return specs


def save_listeners(path: Path | None, specs: list[Spec]) -> None:
    """Replace ``path`` with ``specs`` (logged, not raised, when it cannot be written)."""
    if path is None:
        return
    body = json.dumps(
        {
            "version": VERSION,
            "ingress": [ingress_table(s) for s in specs if isinstance(s, IngressSpec)],
            "unwrap": [unwrap_table(s) for s in specs if isinstance(s, UnwrapSpec)],
        },
        indent=2,
    )
    try:
        replace_private(path, (body + "\n").encode())
    except OSError as exc:
        log.error(
            "cannot write the ingress state file %s: %s (the change lasts until restart)", path, exc
        )
