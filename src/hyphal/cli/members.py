"""`hyphal members`, `hyphal resolve NAME` and `hyphal set name|region|tag VALUE`: the mesh's
members as the running daemon knows them, names to addresses, and live changes of our record."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from hyphal.cli.common import (
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    api_failure,
    client,
    fail,
    fetch,
    out,
    print_json,
    visible,
)
from hyphal.client import ApiError, Client
from hyphal.config import DEFAULT_API_ADDR
from hyphal.membership.record import is_label


def _ago(updated: int | None) -> str:
    from hyphal.cli.status import duration

    if not updated:
        return "-"
    return duration(max(0.0, time.time() - updated)) + " ago"


def member_label(row: dict[str, Any]) -> str:
    """The member's name as the table shows it: a lost claim and ourselves are marked."""
    name = visible(row.get("name") or "") or "(unnamed)"
    if row.get("name") and not row.get("ownsName", True):
        name += " (name taken: lost)"
    if row.get("self"):
        name += " *"
    return name


def members_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "name",
        "region",
        "roles",
        "address",
        "reachable",
        "metric",
        "updated",
        "version",
        box=None,
    )
    for row in rows:
        metric = row.get("metric")
        reach = "left" if row.get("left") else "yes" if row["reachable"] else "no"
        table.add_row(
            member_label(row),
            visible(row.get("region") or "") or "-",
            ",".join(visible(r) for r in row.get("roles") or []) or "-",
            row["address"],
            reach,
            "-" if metric is None else str(metric),
            _ago(row.get("updated")),
            visible(row.get("software") or "") or "-",
        )
    return table


def members(api_addr: ApiAddr = DEFAULT_API_ADDR, as_json: JsonFlag = False) -> None:
    """List the mesh's members: name, region, roles, overlay address, whether routing reaches
    it now, the route's metric, when its record last changed or was refreshed, and its
    software version. '*' marks this node; '(name taken: lost)' a member whose name another
    member claimed first (it stays reachable by its address). A stopped member shows
    'reachable no' at once and goes when its record expires."""
    rows = fetch(api_addr, "/members")
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no members known yet")
        return
    out.print(members_table(rows))
    lost = [r for r in rows if r.get("name") and not r.get("ownsName", True)]
    for row in lost:
        out.print(
            f"note: {visible(row['name'])!r} is claimed by more than one member; "
            f"{row['address']} lost the claim (the member that named itself first keeps it)",
            highlight=False,
        )


def resolve(
    name: Annotated[str, typer.Argument(help="A member name, e.g. db1", metavar="NAME")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Print the overlay address of the member that owns NAME (the winner, when two claim it).
    Exit code 1 when no member is named so."""
    if not is_label(name):
        raise fail(
            f"{visible(name)!r} is not a member name (a-z, 0-9, inner '-', at most 63 characters)",
            EXIT_USAGE,
        )
    row = fetch(api_addr, f"/members/{Client.quote(name)}")
    if as_json:
        print_json(
            {
                "name": row["name"],
                "address": row["address"],
                "publicKey": row["publicKey"],
                "reachable": row["reachable"],
                "region": row["region"],
            }
        )
        return
    out.print(row["address"], highlight=False)
    if not row["reachable"]:
        out.print(f"note: {name} is not reachable now", style="yellow", highlight=False)


class Field(StrEnum):
    name = "name"
    region = "region"
    tag = "tag"


def _change(field: Field, value: str) -> dict[str, Any]:
    if field is Field.tag:
        key, eq, tag_value = value.partition("=")
        if not eq or not key:
            raise fail(f"a tag is KEY=VALUE (KEY= removes it), not {visible(value)!r}", EXIT_USAGE)
        return {"tags": {key: tag_value or None}}
    if value and not is_label(value):
        raise fail(
            f"{field.value} {visible(value)!r} must be a DNS label: lowercase a-z, 0-9 and "
            "inner '-', at most 63 characters ('' drops it)",
            EXIT_USAGE,
        )
    return {field.value: value}


def set_field(
    field: Annotated[Field, typer.Argument(help="What to change: name, region or tag")],
    value: Annotated[
        str,
        typer.Argument(
            help="The new name or region ('' drops it), or a tag as KEY=VALUE (KEY= removes it)",
            metavar="VALUE",
        ),
    ],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Change our member record live: name, region or one tag. The daemon signs the new record
    and gossips it at once; the old name stops resolving everywhere. The change lasts until the
    daemon stops (put member_name / region in the config file to keep it)."""
    body = _change(field, value)
    api = client(api_addr)
    try:
        row = api.json(api.request("PATCH", "/members/self", json=body))
    except ApiError as exc:
        raise api_failure(exc) from None
    if as_json:
        print_json(row)
        return
    tags = ", ".join(f"{k}={visible(v)}" for k, v in sorted(row.get("tags", {}).items()))
    out.print(
        f"our record: name {member_label({**row, 'self': False})}, region "
        f"{visible(row.get('region') or '') or '-'}, tags {tags or '-'}",
        highlight=False,
    )
    if row.get("name") and not row.get("ownsName", True):
        out.print(
            f"warning: another member claimed {visible(row['name'])!r} first; we stay "
            "reachable by our address; choose another name",
            style="yellow",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add `members`, `resolve` and `set` to the `hyphal` command."""
    app.command()(members)
    app.command()(resolve)
    app.command("set")(set_field)
