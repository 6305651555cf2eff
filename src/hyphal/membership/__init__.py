"""Membership: signed member records, admission, and their gossip between neighbours (sans-IO).

``record`` (the member record and its codec), ``hlc`` (version clock), ``admission`` (admin key,
invites, admissions, revocations), ``store`` (what a node believes, with every ingest check),
``names`` (the name-claim rule), ``wire`` (the gossip frame codec) and ``gossip``
(:class:`~hyphal.membership.gossip.MembershipCore`, the state machine the node and the simulator
drive). See docs/membership.md.
"""
