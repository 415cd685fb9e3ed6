"""``make chaos``: N try-ons while everything breaks, and what became of each.

The sandbox answers 20 % of submits with a 5xx, 10 % of task queries with a 5xx and drops 5 % of
their connections, and fails 5 % of tasks with ``InternalError.Algo`` (transient). A third of the way
in, one of the two workers is ``kill -9``'d and started again at once; two thirds of the way in, the
run's own Redis (the broker) is killed and started again, empty. The last line printed is one JSON
object: ``jobs``, ``terminal``, ``succeeded``, ``double_submits`` (jobs with more accepted provider
tasks than one plus their recorded transient resubmits), ``lost``, ``orphan_files`` and
``recovery_s_max`` (the longest time, after a restart, until a job that was with the provider moved on).

    python scripts/chaos.py [--jobs 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import Options, Stack, create_and_poll, media_orphans

FAULTS = "submit=503%20,query=500%10,query=drop%5,task=fail:InternalError.Algo%5"
#: Short HTTP timeouts and leases: a job a dead worker held is resumed within seconds (docs/deployment.rst).
DISPATCHER = {"LEASE_SECONDS": 20, "KEY_POOL": [{"name": "default", "timeout": [3, 10]}]}
ACTIVE = ("submitting", "submitted", "running")


def snapshot() -> dict[int, tuple]:
    from django_tryon.models import TryOn

    return {
        pk: rest
        for pk, *rest in TryOn.objects.values_list("pk", "status", "poll_count", "ticket", "resubmits")
    }


def recovery(before: dict[int, tuple], restarted_at: float, timeout: float = 120.0) -> float:
    """Seconds after ``restarted_at`` until every job that was active in ``before`` has moved on."""
    waiting = {pk for pk, (status, *_rest) in before.items() if status in ACTIVE}
    worst = 0.0
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        now = snapshot()
        for pk in list(waiting):
            if now.get(pk) != before[pk]:
                worst = max(worst, time.time() - restarted_at)
                waiting.discard(pk)
        time.sleep(0.25)
    return timeout if waiting else round(worst, 2)


def double_submits(stack: Stack) -> int:
    """Jobs the provider accepted more tasks for than 1 + their transient resubmits (same uploaded photo)."""
    from django_tryon.models import TryOn

    accepted = Counter(t["inputs"].get("person_image_url") for t in stack.sandbox("tasks")["tasks"])
    doubles = 0
    for uploads, resubmits in TryOn.objects.values_list("uploads", "resubmits"):
        url = (
            (uploads or {}).get("person", {}).get("url")
            if isinstance((uploads or {}).get("person"), dict)
            else None
        )
        if url and accepted[url] > 1 + resubmits:
            doubles += 1
    return doubles


def run(jobs: int, timeout: float) -> dict:
    options = Options(jobs=jobs, clients=min(20, jobs), faults=FAULTS, tryon=DISPATCHER)
    with Stack(options) as stack:
        stack.django_setup()
        from django_tryon.models import TryOn

        shoppers, began = create_and_poll(stack, jobs, options.clients)
        recoveries = []
        for share, breaker in ((1 / 3, "worker"), (2 / 3, "redis")):
            while TryOn.objects.filter(status__in=("succeeded", "failed", "canceled")).count() < jobs * share:
                if time.time() - began > timeout:
                    break
                time.sleep(0.2)
            before = snapshot()
            if breaker == "worker":
                stack.kill_worker(0)
                stack.start_worker(0)
            else:
                stack.kill_redis()
                stack.start_redis()
            restarted = time.time()
            print(
                f"[chaos] {breaker} killed and restarted at {restarted - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            recoveries.append(recovery(before, restarted))
        deadline = began + timeout
        while (
            time.time() < deadline
            and TryOn.objects.exclude(status__in=("succeeded", "failed", "canceled")).exists()
        ):
            time.sleep(0.5)
        for shopper in shoppers:
            shopper.halt.set()
        ids = {i for s in shoppers for i in s.ids}
        rows = {str(r[0]): r[1] for r in TryOn.objects.values_list("public_id", "status")}
        terminal = sum(rows.get(i) in ("succeeded", "failed", "canceled") for i in ids)
        return {
            "jobs": len(ids),
            "terminal": terminal,
            "succeeded": sum(rows.get(i) == "succeeded" for i in ids),
            "double_submits": double_submits(stack),
            "lost": len(ids) - terminal,
            "orphan_files": media_orphans(stack),
            "recovery_s_max": max(recoveries) if recoveries else None,
            "recovery_s": recoveries,
            "create_errors": sum(len(s.errors) for s in shoppers),
            "process_restarts": stack.restarts,
            "failed_codes": dict(
                Counter(TryOn.objects.filter(status="failed").values_list("error_code", flat=True))
            ),
            "resubmits": sum(TryOn.objects.values_list("resubmits", flat=True)),
            "duration_s": round(time.time() - began, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before the run gives up")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.jobs, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
