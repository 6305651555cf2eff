"""Fixtures for hostile-input tests: the same namespace lab as ``tests/netns``.

``topology(desc, **kwargs)`` builds real daemons in namespaces (skipping without root or
``ip netns``) and closes them at teardown; a failing test gets every node's log tail attached.
Mark modules ``pytestmark = pytest.mark.netns`` and import the lab with
``from hyphal.testing import netlab``.
"""

from hyphal.testing.netlab_pytest import pytest_runtest_makereport, topology

__all__ = ["pytest_runtest_makereport", "topology"]
