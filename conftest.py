"""Root conftest: kept thin. Hypothesis profiles (``ci`` is loaded when the CI variable is set)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = ["pytester"]
