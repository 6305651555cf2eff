"""Fixtures for netns tests: the lab's ``topology`` factory and log tails on failure.

Both come from :mod:`hyphal.testing.netlab_pytest` (shared with ``tests/hostile``).
"""

from hyphal.testing.netlab_pytest import pytest_runtest_makereport, topology

__all__ = ["pytest_runtest_makereport", "topology"]
