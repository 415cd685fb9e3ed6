"""What ``make bench`` can reach at best: the dispatcher's makespan on a model, with its real poll schedule.

A poll-only provider tells nobody when a task ends; the dispatcher sees it at its next poll, and only then
can a waiting job take the slot. This model runs ``make bench``'s load (N jobs, 5 slots, durations
uniform in L ± 20 %, first come first served) with the schedule of ``django_tryon.timing`` (first poll
and steps, from the percentiles of the same distribution) and a fixed hand-over cost per freed slot (the
poll's own time, admission, the next submit), and prints the efficiency (⌈N/5⌉·L ÷ makespan) and polls
per job. It shows how far the two targets of the bench (efficiency ≥ 0.95 at 2 s, ≤ 3 polls per job at
15 s) can both be met, whatever the machine.

    python scripts/bench_model.py [--runs 200]
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import random
import statistics
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SLOTS = 5
SPREAD = 0.2
#: Seconds from the first create to the first submit, and from the last end to its result (measured by
#: ``make bench`` on an idle machine they are about 0.3 s and 0.15 s; the model takes them as given).
START, END = 0.3, 0.15


def schedule(latency: float, density: float = 1.0):
    """The poll schedule of ``django_tryon.timing`` for tasks of ``latency`` ± 20 % (steps ÷ ``density``):
    a function of a task's duration that returns when it is seen to end and after how many polls."""
    from django_tryon import timing

    low, high = latency * (1 - SPREAD), latency * (1 + SPREAD)
    stats = timing.Durations(*(low + (high - low) * q for q in (0.10, 0.25, 0.50, 0.90)), samples=20)
    with mock.patch.object(timing, "observed", return_value=stats):
        first = timing.first_check("model", latency)
        polls = [first]  # when each poll happens, as long as the task is still running
        while polls[-1] < high:
            polls.append(polls[-1] + timing.next_check("model", latency, polls[-1]) / density)

    def seen(duration: float) -> tuple[float, int]:
        index = bisect.bisect_left(polls, duration)
        return polls[index], index + 1

    return seen


def run(latency: float, jobs: int, cost: float, seed: int, density: float = 1.0) -> tuple[float, list[int]]:
    """One run: (efficiency, polls per job)."""
    rnd = random.Random(seed)
    seen = schedule(latency, density)
    free = [START] * SLOTS  # when each slot can take its next submit
    last_end, polls = 0.0, []
    for _ in range(jobs):
        start = heapq.heappop(free)
        duration = rnd.uniform(latency * (1 - SPREAD), latency * (1 + SPREAD))
        at, count = seen(duration)
        polls.append(count)
        heapq.heappush(free, start + at + cost)
        last_end = max(last_end, start + duration)
    return math.ceil(jobs / SLOTS) * latency / (last_end + END), polls


def main() -> None:
    from django.conf import settings

    settings.configure(TRYON={})  # the defaults: POLL_INTERVAL, MIN_POLL_INTERVAL
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print(f"{'latency':>7} {'jobs':>4} {'steps':>8} {'hand-over s':>11} {'efficiency':>10} {'polls p50':>9}")
    line = {}
    for latency, jobs in ((2.0, 200), (15.0, 50)):
        for density in (1.0, 2.0):
            for cost in (0.0, 0.02, 0.05, 0.1):
                results = [run(latency, jobs, cost, seed, density) for seed in range(args.runs)]
                efficiency = statistics.fmean(r[0] for r in results)
                polls = statistics.median(p for r in results for p in r[1])
                steps = "as built" if density == 1 else f"÷ {density:g}"
                print(f"{latency:>7g} {jobs:>4} {steps:>8} {cost:>11.2f} {efficiency:>10.3f} {polls:>9g}")
                line[f"L{latency:g}_steps{density:g}_cost{cost:g}"] = {
                    "efficiency": round(efficiency, 3),
                    "polls_p50": polls,
                }

    def efficiency(cost: float) -> float:
        return statistics.fmean(run(2.0, 200, cost, seed)[0] for seed in range(args.runs))

    budget = [cost / 1000 for cost in range(0, 101, 2) if efficiency(cost / 1000) >= 0.95]
    line["handover_s_for_0.95_at_2s"] = budget[-1] if budget else None
    print(
        f"longest hand-over that still gives 0.95 at 2 s (steps as built): {line['handover_s_for_0.95_at_2s']} s"
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
