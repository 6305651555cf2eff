"""Issue 9 part 3: the counter list in docs/routing.md is the code's, so drift fails CI."""

from __future__ import annotations

import re
from pathlib import Path

from test_routing_security import usable_router

from hyphal.routing.router import COUNTERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "routing.md"


def documented_counters() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Counters", 1)[1].split("\n## ", 1)[0]
    listed = section.split("(all start at 0):", 1)[1].split(".", 1)[0]
    return re.findall(r"[a-z_]+", listed)


def test_documented_counters_match_the_code() -> None:
    documented = documented_counters()
    assert len(documented) == len(set(documented))
    assert set(documented) == set(COUNTERS)
    assert set(usable_router().counters) == set(COUNTERS)
