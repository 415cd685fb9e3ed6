"""Smaller versions of ``make bench`` and ``make chaos`` (scripts/bench.py, scripts/chaos.py), so CI guards them.

Each starts the whole production-like stack: PostgreSQL, a Redis of its own, two prefork Celery
workers and beat, the example shop over HTTP and the sandbox enforcing the provider's limits in
reject mode. The full runs and their figures are in docs/performance.rst.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require_program, require_service

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> dict:
    """A run in its own process (it sets Django up for the run's own database); its last line is JSON."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


pytestmark = [pytest.mark.redis, pytest.mark.load]


@pytest.fixture(autouse=True)
def _services():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_program("redis-server")  # the runs start a Redis of their own (and kill it)


def test_a_burst_keeps_the_provider_busy_without_a_single_429():
    figures = run("bench.py", "--scenario", json.dumps({"jobs": 30, "latency": 1.5, "clients": 10}))
    assert figures["jobs"] == 30 and figures["succeeded"] == 30, figures
    assert figures["throttled_submits"] == 0, (
        figures
    )  # the dispatcher never exceeds 5 in flight or 10 submits/s
    assert figures["efficiency"] >= 0.6, (
        figures
    )  # 6 rounds of 1.5 s: start-up weighs far more than in make bench
    assert figures["polls_per_job_median"] <= 3 and figures["overhead_p95_s"] <= 1.5, figures
    assert figures["api_queries_per_status_get"] <= 3 and figures["worker_cpu_s_per_job"] <= 0.3, figures


def test_a_killed_worker_and_a_restarted_broker_lose_nothing():
    figures = run("chaos.py", "--jobs", "30", "--timeout", "240")
    assert figures["jobs"] == 30 and figures["terminal"] == 30 and figures["lost"] == 0, figures
    assert figures["succeeded"] >= 29, figures  # a task failing transiently twice in a row fails for good
    assert figures["double_submits"] == 0 and figures["orphan_files"] == 0, figures
    assert figures["recovery_s_max"] <= 60, figures
