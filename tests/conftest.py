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
