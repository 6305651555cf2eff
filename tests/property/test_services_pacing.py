"""Publishing under the per-origin allowance, for any sequence of drains and resumes at any
times: the record never gets more versions than a neighbour accepts, a change that makes an
instance unavailable goes out at once while the allowance has a token, and the record always
catches up with the local state once the allowance refills."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.membership.params import DEFAULT_PARAMS
from hyphal.node.members import PUBLIC_NETWORK, MembersPart
from hyphal.services.extension import services_of
from hyphal.services.part import ServicesPart
from hyphal.services.spec import parse_spec

IDENTITY = NodeIdentity.generate()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(clock: Clock) -> ServicesPart:
    members = MembersPart(
        IDENTITY.public_key,
        XEdDSASigner(IDENTITY.private_bytes()),
        XEdDSAVerifier(),
        None,
        links=lambda i: None,
        reachable=lambda p: False,
        clock=clock,
    )
    return ServicesPart(IDENTITY, PUBLIC_NETWORK, members, lambda p: None, clock)


events = st.lists(
    st.tuples(st.floats(0.0, 8.0), st.booleans()), min_size=1, max_size=40
)  # (seconds after the previous event, drain?)


@settings(max_examples=60, deadline=None)
@given(events)
def test_pacing(sequence: list[tuple[float, bool]]) -> None:
    clock = Clock()
    part = make(clock)
    part.add(parse_spec({"name": "web", "port": 80, "check": "none"}))
    part.tick(clock())
    tokens = float(DEFAULT_PARAMS.origin_burst) - 2  # the first record and this one
    last = clock()

    def draining_published() -> bool:
        return services_of(part.members.own_extension())[0].endpoints[0].draining

    for gap, drain in sequence:
        clock.t += gap
        tokens = min(
            DEFAULT_PARAMS.origin_burst,
            tokens + (clock() - last) * DEFAULT_PARAMS.origin_rate_per_s,
        )
        last = clock()
        had_token = tokens >= 1.0
        before = part.counters()["published"]
        part.drain("web", drain)
        part.tick(clock())
        sent = part.counters()["published"] - before
        tokens -= sent
        assert tokens >= 0.0 - 1e-9  # never more than the neighbours accept
        if drain and had_token:
            assert draining_published()  # a failure goes out at once
    clock.t += 3600
    part.tick(clock())
    assert draining_published() == (part.local_rows()[0]["draining"])
