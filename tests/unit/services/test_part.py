"""The services part without a mesh: a real membership part, a hand-driven clock. Publishing
follows health with rise/fall, failures go out at once under the per-origin allowance,
recoveries wait for the reserve, and runtime services, drains and claims outlive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.config import NodeConfig
from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.node.members import PUBLIC_NETWORK, MembersPart
from hyphal.services.extension import services_of
from hyphal.services.grant import parse_grant_text
from hyphal.services.part import ServiceError, ServicesPart
from hyphal.services.spec import parse_spec


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(
    tmp: Path | None,
    identity: NodeIdentity | None = None,
    clock: Clock | None = None,
    wall: float = 1_700_000_000.0,
    **kw: object,
) -> ServicesPart:
    ident = identity or NodeIdentity.generate()
    clk = clock or Clock()
    members = MembersPart(
        ident.public_key,
        XEdDSASigner(ident.private_bytes()),
        XEdDSAVerifier(),
        None,
        links=lambda i: None,
        reachable=lambda p: False,
        clock=clk,
    )
    return ServicesPart(
        ident,
        PUBLIC_NETWORK,
        members,
        lambda p: None,
        clk,
        state_file=None if tmp is None else tmp / "services.json",
        wall=lambda: wall,
        **kw,  # type: ignore[arg-type]
    )


def published(part: ServicesPart) -> list[tuple[str, int, bool, bool]]:
    return [
        (s.name, e.port, e.healthy, e.draining)
        for s in services_of(part.members.own_extension())
        for e in s.endpoints
    ]


def test_health_is_published_with_rise_and_fall_and_flapping_changes_nothing() -> None:
    part = make(None)
    clock = part._clock  # type: ignore[attr-defined]
    part.add(parse_spec({"name": "web", "port": 80, "rise": 2, "fall": 2}))
    key = ("web", "tcp", 80)
    assert part.tick(clock()) == [key]
    assert published(part) == [("web", 80, False, False)]  # unhealthy until it passes
    for ok in (True, True):
        part.report(key, ok, clock())
    part.tick(clock())
    assert published(part) == [("web", 80, True, False)]
    count = part.counters()["published"]
    for n in range(40):  # pass, fail, pass, fail ...: never two failures in a row
        part.report(key, n % 2 == 0, clock())
        part.tick(clock())
    assert part.counters()["published"] == count
    part.report(key, False, clock())
    part.report(key, False, clock())
    part.tick(clock())
    assert published(part) == [("web", 80, False, False)]


def test_failures_go_out_at_once_and_recoveries_wait_for_the_reserve() -> None:
    clock = Clock()
    part = make(None, clock=clock)
    part.add(parse_spec({"name": "web", "port": 80, "check": "none"}))
    key = ("web", "tcp", 80)
    part.tick(clock())
    assert published(part) == [("web", 80, True, False)]
    downs = 0
    for _ in range(12):  # flip as fast as rise=fall=1 allows, without time passing
        part.drain("web", True)
        part.tick(clock())
        downs += published(part)[0][3]
        part.drain("web", False)
        part.tick(clock())
    # every drain that the allowance lets through went out; recoveries held the reserve back
    assert part.counters()["publish-deferred"] > 0
    part.drain("web", True)
    part.tick(clock())
    assert published(part)[0][3] is True  # the reserve is there for a failure
    clock.t += 60
    part.drain("web", False)
    part.tick(clock())
    assert published(part) == [("web", 80, True, False)]
    assert downs >= 1 and key in part.specs


def test_runtime_services_drains_and_claims_outlive_a_restart(tmp_path: Path) -> None:
    ident = NodeIdentity.generate()
    one = make(tmp_path, ident)
    one.add(parse_spec({"name": "web", "port": 80, "check": "http://health"}))
    one.drain("web")
    grant = one.local_rows()[0]["grant"]
    two = make(tmp_path, ident, wall=1_700_009_999.0)
    (row,) = two.local_rows()
    assert row["name"] == "web" and row["check"] == "http:/health" and row["draining"]
    # the same first-claim time: a restart does not make the claim younger
    assert parse_grant_text(row["grant"]).since == parse_grant_text(grant).since
    assert (tmp_path / "services.json").stat().st_mode & 0o777 == 0o600
    two.remove("web")
    assert make(tmp_path, ident).local_rows() == []


def test_a_damaged_state_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / "services.json").write_text("{not json")
    assert make(tmp_path).local_rows() == []
    assert (tmp_path / "services.json.bad").exists()


def test_config_services_cannot_be_removed_at_runtime() -> None:
    spec = parse_spec({"name": "irc", "port": 6667})
    part = make(None, specs=(spec,))
    with pytest.raises(ServiceError, match="config file"):
        part.remove("irc")
    with pytest.raises(ServiceError, match="already served"):
        part.add(spec)
    with pytest.raises(ServiceError, match="serves no"):
        part.drain("nope")


def test_what_does_not_fit_the_record_is_refused() -> None:
    part = make(None)
    for n in range(2):  # two long names with their grants fit the 512 bytes, a third does not
        part.add(parse_spec({"name": f"s{n}" + "x" * 60, "port": 80}))
    with pytest.raises(ServiceError, match="extension"):
        part.add(parse_spec({"name": "s3" + "x" * 60, "port": 80}))
    assert len(part.local_rows()) == 2


def test_a_private_network_member_without_a_grant_is_published_without_proof() -> None:
    admin = NodeIdentity.generate()
    part = make(None, admins=frozenset({admin.public_key}))
    row = part.add(parse_spec({"name": "web", "port": 80, "check": "none"}))
    assert row["owner"] is None and row["grant"] is None
    part.tick(part._clock())  # type: ignore[attr-defined]
    assert part.local_services() == []


def test_a_reload_follows_the_service_tables_and_adopts_a_runtime_instance(
    tmp_path: Path,
) -> None:
    web = parse_spec({"name": "web", "port": 80})
    part = make(tmp_path, specs=(web,))
    part.add(parse_spec({"name": "chat", "port": 6667}))
    web81 = parse_spec({"name": "web", "port": 81})
    chat = parse_spec({"name": "chat", "port": 6667, "rise": 1})
    change = part.reconfigure(NodeConfig(services=(web81, chat)))
    assert change == "adding web tcp/81, chat tcp/6667; removing web tcp/80"
    rows = {(r["name"], r["port"]): r for r in part.local_rows()}
    assert set(rows) == {("web", 81), ("chat", 6667)}
    assert rows[("chat", 6667)]["fromConfig"] and rows[("chat", 6667)]["rise"] == 1
    # the config declares chat now: the state file no longer holds it
    assert make(tmp_path).local_rows() == []
    assert part.reconfigure(NodeConfig(services=(web81, chat))) is None
