"""The adaptive polling schedule (django_tryon.timing), from drawn histories."""

from __future__ import annotations

from unittest import mock

import pytest

from django_tryon import timing
from django_tryon.timing import Durations


def history(low: float, high: float) -> Durations:
    spread = high - low
    return Durations(
        p10=low + 0.1 * spread,
        p25=low + 0.25 * spread,
        p50=low + 0.5 * spread,
        p90=low + 0.9 * spread,
        samples=20,
    )


def polls_until(end: float, typical: float, stats: Durations | None) -> tuple[int, float]:
    """How many polls a task ending at ``end`` seconds gets, and how late the last one sees it."""
    with mock.patch.object(timing, "observed", return_value=stats):
        t = timing.first_check("m", typical)
        polls = 1
        while t < end:
            t += timing.next_check("m", typical, t)
            polls += 1
    return polls, t - end


@pytest.mark.parametrize("latency", [2.0, 15.0, 30.0])
def test_about_three_polls_whatever_the_length(latency):
    stats = history(0.8 * latency, 1.2 * latency)
    ends = [latency * (0.8 + 0.4 * i / 99) for i in range(100)]
    results = [polls_until(end, latency, stats) for end in ends]
    polls = sorted(p for p, _ in results)
    assert polls[50] <= 3 and polls[95] <= 7
    assert max(late for _, late in results) <= 0.1 * latency  # never more than a tenth of the task late


def test_no_history_probes_from_one_second_and_stops_at_the_typical_duration():
    polls, late = polls_until(2.0, 15.0, None)
    assert polls == 3 and late <= 0.3  # 1, 1.5, 2.25
    polls, late = polls_until(16.0, 15.0, None)
    assert polls <= 11 and late <= 3.0


def test_a_task_started_before_the_history_waits_for_the_usual_first_look():
    stats = history(12.0, 18.0)
    with mock.patch.object(timing, "observed", return_value=stats):
        assert timing.next_check("m", 15.0, 3.0) == pytest.approx(
            min(3.0, stats.p25 - 3.0)
        )  # capped by POLL_INTERVAL
    polls, _ = polls_until(15.0, 15.0, stats)
    assert polls <= 3


def test_a_late_task_is_polled_less_and_less():
    stats = history(1.6, 2.4)
    with mock.patch.object(timing, "observed", return_value=stats):
        steps = [timing.next_check("m", 15.0, elapsed) for elapsed in (2.0, 3.0, 5.0, 9.0)]
    assert steps[0] < steps[1] < steps[2] <= steps[3] <= 3.0


def test_percentile():
    assert timing.percentile([1.0], 0.5) == 1.0
    assert timing.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0


def test_the_bench_model_replays_this_schedule():
    """scripts/bench_model.py (the ceiling of ``make bench`` quoted in docs/performance.rst) polls as this
    module does, and every second of hand-over lowers its efficiency."""
    import importlib.util
    import statistics
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_model.py"
    spec = importlib.util.spec_from_file_location("bench_model", path)
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    at_once, slow = (
        statistics.fmean(model.run(2.0, 200, cost, seed)[0] for seed in range(20)) for cost in (0.0, 0.1)
    )
    assert 0.93 < at_once < 0.98 and slow < at_once - 0.03
    for latency in (2.0, 15.0):
        seen = model.schedule(latency)
        for end in (latency * (0.8 + 0.4 * i / 20) for i in range(21)):
            assert seen(end)[1] == polls_until(end, latency, history(0.8 * latency, 1.2 * latency))[0]
