"""The CI Hypothesis profile loosens timing only, never what the property tests check."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings


def test_ci_profile_drops_only_timing_checks() -> None:
    ci = settings.get_profile("ci")
    default = settings.get_profile("default")
    assert ci.deadline is None
    assert set(ci.suppress_health_check) == {HealthCheck.too_slow}
    assert ci.max_examples == default.max_examples
    assert ci.stateful_step_count == default.stateful_step_count
    assert ci.phases == default.phases


@pytest.mark.skipif(not os.environ.get("CI"), reason="checks the profile CI runs with")
def test_ci_runs_load_the_ci_profile() -> None:
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
