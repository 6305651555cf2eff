"""Property tests of the feeder's order: the keyed permutation is a bijection for any size,
and a cycle over any set of source CIDRs hands out every block's target exactly once with no
two consecutive targets in the same /24 (/48), also across the cycle boundary."""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.permute import Permutation
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace, block_key
from hyphal.mapping.feeder.state import FeederState

LAB = TargetFilter.build(exceptions=["198.18.0.0/15", "2001:db8::/32"])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1500), st.binary(min_size=1, max_size=16))
def test_permutation_is_a_bijection(n: int, key: bytes) -> None:
    perm = Permutation(n, key)
    assert sorted(perm[i] for i in range(n)) == list(range(n))


v4_cidr = st.builds(
    lambda a, b, plen: f"198.{18 + (a & 1)}.{b}.{(a * 37) % 256}/{plen}",
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(20, 32),
)
v6_cidr = st.builds(
    lambda a, plen: f"2001:db8:{a:x}::/{plen}", st.integers(0, 0xFFFF), st.integers(44, 64)
)


def block_of(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return block_key(address.version, int(address))


@settings(max_examples=60, deadline=None)
@given(st.lists(v4_cidr | v6_cidr, min_size=1, max_size=12), st.integers(1, 40))
def test_cycles_visit_every_block_once_without_neighbours_in_one_block(
    cidrs: list[str], batch: int
) -> None:
    space = TargetSpace(cidrs, LAB)
    state = FeederState(Database(":memory:"), space, LAB)
    order: list[tuple[str, str]] = []
    for _cycle in range(2):
        got: list[str] = []
        cycle_ids = set()
        while len(got) < space.blocks:
            claim = state.claim("w", batch, 1.0)
            cycle_ids.add(claim.cycle_id)
            got.extend(t.ip for t in claim.targets)
        assert len(cycle_ids) == 1
        assert len(got) == space.blocks
        blocks = [block_of(ip) for ip in got]
        assert len(set(blocks)) == space.blocks  # every block exactly once per cycle
        order.extend((ip, b) for ip, b in zip(got, blocks, strict=True))
    if space.blocks >= 2:
        for (_, a), (_, b) in itertools.pairwise(order):
            assert a != b
    for ip, _ in order:
        assert LAB.verdict(ip) is None
        assert any(ipaddress.ip_address(ip) in ipaddress.ip_network(c, strict=False) for c in cidrs)
