"""The router reports selected-next-hop changes as RouteChange actions (report_routes=True):
a node becoming reachable, a node lost, and a failover naming the old and new next hop."""

from __future__ import annotations

from hyphal.routing.metric import INFINITY
from hyphal.routing.types import RouteChange
from hyphal.sim.routernet import RouterNet


def reporting(net: RouterNet, *nodes: int) -> None:
    for node in nodes:
        net.routers[node].report_routes = True


def changes(net: RouterNet, node: int, prefix: bytes | None = None) -> list[RouteChange]:
    return [
        c for _, n, c in net.route_changes if n == node and (prefix is None or c.prefix64 == prefix)
    ]


def triangle() -> RouterNet:
    """0-1-2 fast, 0-2 slow: node 0 reaches 2 through 1."""
    net = RouterNet()
    for i in range(3):
        net.add_node(i)
    reporting(net, 0, 1, 2)
    net.link(0, 1, 0.001)
    net.link(1, 2, 0.001)
    net.link(0, 2, 0.040)
    net.run_for(10.0)
    assert net.path(0, 2) == [0, 1, 2]
    return net


def test_new_nodes_are_reported_reachable_once_each() -> None:
    net = triangle()
    for dst in (1, 2):
        first = changes(net, 0, net.prefix(dst))[0]
        assert first.kind == "reachable" and first.old_peer is None
        assert first.public_key == net.routers[dst].public_key
        assert first.metric < INFINITY
    reachable = [c for c in changes(net, 0) if c.kind == "reachable"]
    assert sorted(c.prefix64 for c in reachable) == sorted([net.prefix(1), net.prefix(2)])


def test_failover_when_the_middle_link_goes_is_one_change_naming_both_hops() -> None:
    net = triangle()
    net.route_changes.clear()
    net.unlink(0, 1)
    net.run_for(5.0)
    assert net.path(0, 2) == [0, 2]
    to_2 = changes(net, 0, net.prefix(2))
    assert len(to_2) == 1, to_2
    change = to_2[0]
    assert (change.kind, change.old_peer, change.new_peer) == ("failover", 1, 2)
    assert change.reason == "the link to the old next hop went down"
    assert change.public_key == net.routers[2].public_key
    # node 1 is still reachable, the other way round: a failover too, not a loss
    assert [(c.kind, c.old_peer, c.new_peer) for c in changes(net, 0, net.prefix(1))] == [
        ("failover", 1, 2)
    ]


def test_a_node_cut_off_is_reported_lost_with_its_old_next_hop() -> None:
    net = RouterNet()
    net.add_node(0)
    net.add_node(1)
    net.add_node(2)
    reporting(net, 0)
    net.link(0, 1, 0.001)
    net.link(1, 2, 0.001)
    net.run_for(10.0)
    net.route_changes.clear()
    net.unlink(1, 2)
    net.run_for(10.0)
    lost = changes(net, 0, net.prefix(2))
    assert [(c.kind, c.old_peer, c.new_peer, c.metric) for c in lost] == [
        ("lost", 1, None, INFINITY)
    ]
    assert lost[0].reason == "the old next hop retracted the route"
    assert changes(net, 0, net.prefix(1)) == []  # its neighbour is still there


def test_a_better_route_is_a_failover_with_the_metrics() -> None:
    net = RouterNet()
    for i in range(3):
        net.add_node(i)
    reporting(net, 0)
    net.link(0, 2, 0.040)
    net.run_for(10.0)
    net.route_changes.clear()
    net.link(0, 1, 0.001)
    net.link(1, 2, 0.001)
    net.run_for(10.0)
    to_2 = changes(net, 0, net.prefix(2))
    assert [(c.kind, c.old_peer, c.new_peer) for c in to_2] == [("failover", 2, 1)]
    assert to_2[0].reason.startswith("a better route: metric ")


def test_routers_without_report_routes_emit_none() -> None:
    net = RouterNet()
    net.link(0, 1, 0.001)
    net.link(1, 2, 0.001)
    net.run_for(10.0)
    net.unlink(1, 2)
    net.run_for(5.0)
    assert net.route_changes == []


def test_a_loss_healed_by_a_seqno_request_is_one_failover_not_lost_and_reachable() -> None:
    """Node 0 learned 1 directly (metric 0 sets the feasibility distance): the route through 2
    is unfeasible until a seqno request answers. One failover change, no "lost"."""
    net = triangle()
    net.route_changes.clear()
    net.unlink(0, 1)
    net.run_for(5.0)
    to_1 = changes(net, 0, net.prefix(1))
    assert [(c.kind, c.old_peer, c.new_peer) for c in to_1] == [("failover", 1, 2)]
    assert "seqno request" in to_1[0].reason


def test_a_held_back_loss_is_reported_when_nothing_comes() -> None:
    """A loss with only unfeasible alternatives is reported after the grace if none heals."""
    net = triangle()
    net.silenced.add(2)  # 2 hears nothing and says nothing: the seqno request goes unanswered
    net.route_changes.clear()
    net.unlink(0, 1)
    net.run_for(1.0)
    assert changes(net, 0, net.prefix(1)) == []  # held back for a moment
    net.run_for(5.0)
    kinds = [(c.kind, c.old_peer) for c in changes(net, 0, net.prefix(1))]
    assert kinds[0] == ("lost", 1), kinds
