"""Test-wide setup: tests/helpers importable from every test (pytest runs with
--import-mode=importlib), and the Hypothesis profile for CI.

With ``CI`` set, the ``ci`` profile is loaded: a slow shared machine must not fail a run on timing
alone, so it drops the per-example deadline and the "input generation is slow" health check; runs
are derandomized (a failure reproduces) and keep no example database. It keeps every example
count and every other health check, so what the tests check is unchanged. (Recent Hypothesis
ships a similar built-in profile; registering it here pins it whatever the installed version.)
"""

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
    print_blob=True,
)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _in_process_dns_on_a_free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process nodes (unit and integration tests) must not take the host's DNS port: a node
    left at the default port 53 serves DNS on a free port instead. Daemons in namespaces (the
    netns tests) are other processes and keep port 53 in their own namespace."""
    import dataclasses

    import hyphal.node as node_module
    from hyphal.config import DEFAULT_DNS_PORT

    real = node_module.dns_part

    def on_a_free_port(config: Any, *args: Any, **kwargs: Any) -> Any:
        if config.dns_port == DEFAULT_DNS_PORT:
            config = dataclasses.replace(config, dns_port=0)
        return real(config, *args, **kwargs)

    monkeypatch.setattr(node_module, "dns_part", on_a_free_port)
