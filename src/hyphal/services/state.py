"""The services state file: runtime-added instances, drains, our first claims, owners seen.

``hyphal service add`` (or the API) on a running daemon must survive a restart, so the services
part keeps a small JSON file beside the node's other state (``services.json`` next to the key
file; ``services_file`` in the config sets another path, and the in-process test nodes have
none). Instances from ``[[service]]`` tables are not stored: the config file already says them.
The file is rewritten atomically (temporary file + rename) with mode 0600. A file that cannot
be read is logged and ignored (the node starts with the config's services only); it is never
silently overwritten: it is moved aside to ``services.json.bad`` first.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from hyphal.filemodes import replace_private
from hyphal.services.spec import ServiceSpec, SpecError, parse_spec

log = logging.getLogger("hyphal.services")

VERSION = 1
MAX_FILE = 256 * 1024


@dataclass
class SavedState:
    services: list[ServiceSpec] = field(default_factory=list)
    drained: set[str] = field(default_factory=set)
    claims: dict[str, int] = field(default_factory=dict)
    """Service name -> when we first claimed it (Unix seconds), for our own grants."""
    owners: dict[str, bytes] = field(default_factory=dict)
    """Service name -> the owner key this node has seen (public network, authz "sticky")."""


def load_state(path: Path | None) -> SavedState:
    if path is None or not path.exists():
        return SavedState()
    try:
        if path.stat().st_size > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE} bytes")
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} services state file")
        services = [parse_spec(s, f"{path}: service") for s in data.get("services", [])]
        drained = {str(n) for n in data.get("drained", [])}
        claims = {str(k): int(v) for k, v in dict(data.get("claims", {})).items()}
        owners = {str(k): bytes.fromhex(str(v)) for k, v in dict(data.get("owners", {})).items()}
        if any(len(v) != 32 for v in owners.values()):
            raise ValueError("an owner key is not 32 bytes")
    except (OSError, ValueError, TypeError, SpecError, AttributeError) as exc:
        aside = path.with_name(path.name + ".bad")
        log.error(
            "cannot read the services state file %s (%s); moved it to %s and starting with the "
            "config's services only; re-add the others with 'hyphal service add'",
            path,
            exc,
            aside,
        )
        with contextlib.suppress(OSError):
            path.replace(aside)
        return SavedState()
    return SavedState(services, drained, claims, owners)


def save_state(path: Path | None, state: SavedState) -> None:
    if path is None:
        return
    body = json.dumps(
        {
            "version": VERSION,
            "services": [s.to_json() for s in state.services],
            "drained": sorted(state.drained),
            "claims": dict(sorted(state.claims.items())),
            "owners": {k: v.hex() for k, v in sorted(state.owners.items())},
        },
        indent=2,
    )
    try:
        replace_private(path, (body + "\n").encode())
    except OSError as exc:
        log.error(
            "cannot write the services state file %s: %s (changes last until restart)", path, exc
        )
