"""``make bench``: the dispatcher against the provider's limits, and a naive integration beside it.

Each scenario runs the example shop on PostgreSQL and a Redis of its own, two prefork Celery worker
processes (different hostnames) and beat, and the bundled sandbox as the provider with its limits on
in reject mode (over 5 tasks in flight or 10 submits/s → 429). N try-ons are created through the REST
API by 50 concurrent shoppers, who then poll their own jobs. Scenarios: the dispatcher at 2 s ± 20 %,
the naive baseline at the same latency, the dispatcher with a pool of two keys, and the dispatcher at
15 s (the real aitryon) for the polls per job. The last line printed is one JSON object.

    python scripts/bench.py [--jobs 200] [--only dispatcher|naive|pool|slow]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import PROVIDER_CONCURRENCY, Options, Stack, create_and_poll, job_rows, percentile

TERMINAL = ("succeeded", "failed", "canceled")


def measure(options: Options, timeout: float) -> dict:
    """Run one scenario and return its figures."""
    with Stack(options) as stack:
        stack.django_setup()
        from django_tryon.models import TryOn

        workers = stack.worker_processes()
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in workers)
        peak = {"rss": 0.0}
        done = threading.Event()

        def sample_memory() -> None:
            while not done.is_set():
                with contextlib.suppress(Exception):
                    peak["rss"] = max(
                        peak["rss"], sum(p.memory_info().rss for p in stack.worker_processes()) / 2**20
                    )
                time.sleep(0.5)

        threading.Thread(target=sample_memory, daemon=True).start()
        shoppers, began = create_and_poll(stack, options.jobs, options.clients)
        sent: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if options.naive:
                from naive_tasks import run_tryon

                for pk in (
                    TryOn.objects.filter(status="queued").exclude(pk__in=sent).values_list("pk", flat=True)
                ):
                    run_tryon.delay(pk)
                    sent.add(pk)
            created = sum(len(s.ids) + len(s.errors) for s in shoppers)
            if created >= options.jobs and not TryOn.objects.exclude(status__in=TERMINAL).exists():
                break
            time.sleep(0.2)
        done.set()
        for shopper in shoppers:
            shopper.halt.set()
            shopper.join(timeout=30)
        cpu_after = sum(sum(p.cpu_times()[:2]) for p in stack.worker_processes())
        rows = job_rows()
        if os.environ.get("BENCH_DUMP"):  # the jobs' timelines, for a closer look
            Path(os.environ["BENCH_DUMP"]).write_text(json.dumps(rows, default=str, indent=1))
        stats = stack.sandbox("stats")
        queries = status_get_queries(stack, shoppers)
        return figures(options, rows, stats, shoppers, began, cpu_after - cpu_before, peak["rss"], queries)


def status_get_queries(stack: Stack, shoppers: list) -> int | None:
    """Database queries of one ``GET /tryon/api/tryons/{id}/`` by its owner (warm process)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    shopper = next((s for s in shoppers if s.ids and s.session.cookies.get("sessionid")), None)
    if shopper is None:
        return None
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = shopper.session.cookies["sessionid"]
    url = f"/tryon/api/tryons/{shopper.ids[0]}/"
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def figures(
    options: Options,
    rows: list[dict],
    stats: dict,
    shoppers: list,
    began: float,
    cpu: float,
    rss: float,
    queries: int | None,
) -> dict:
    n = len(rows)
    succeeded = [r for r in rows if r["status"] == "succeeded"]
    finished = [r["finished_at"].timestamp() for r in rows if r["finished_at"]]
    makespan = (max(finished) - began) if finished else None
    ideal = math.ceil(n / (PROVIDER_CONCURRENCY * options.keys)) * options.latency
    overheads = [
        (r["finished_at"] - r["remote_ended_at"]).total_seconds() for r in succeeded if r["remote_ended_at"]
    ]
    polls = [r["poll_count"] for r in rows]
    latencies = [ms for s in shoppers for ms in s.latencies_ms]
    return {
        "jobs": n,
        "succeeded": len(succeeded),
        "failed": sum(r["status"] == "failed" for r in rows),
        "makespan_s": round(makespan, 2) if makespan else None,
        "ideal_s": ideal,
        "efficiency": round(ideal / makespan, 3) if makespan else None,
        "throttled_submits": stats.get("throttled_submits"),
        "accepted_submits": stats.get("accepted"),
        "uploads_per_job": round(stats.get("uploads", 0) / max(n, 1), 2),
        "polls_per_job_median": percentile(polls, 0.5),
        "polls_per_job_p95": percentile(polls, 0.95),
        "overhead_p50_s": round(percentile(overheads, 0.5), 3) if overheads else None,
        "overhead_p95_s": round(percentile(overheads, 0.95), 3) if overheads else None,
        "worker_cpu_s_per_job": round(cpu / max(n, 1), 3),
        "api_status_p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "api_status_gets": len(latencies),
        "api_queries_per_status_get": queries,
        "peak_rss_mb": round(rss, 1),
        "create_errors": sum(len(s.errors) for s in shoppers),
        "create_error_samples": sorted({e[:120] for s in shoppers for e in s.errors})[:3],
    }


SCENARIOS = {
    "dispatcher": {},
    "naive": {"naive": True},
    "pool": {"keys": 2},
    "slow": {"latency": 15.0, "jobs": 50},
}
KEYS = (
    "jobs",
    "succeeded",
    "efficiency",
    "throttled_submits",
    "uploads_per_job",
    "polls_per_job_median",
    "polls_per_job_p95",
    "overhead_p50_s",
    "overhead_p95_s",
    "worker_cpu_s_per_job",
    "api_status_p95_ms",
    "api_queries_per_status_get",
    "peak_rss_mb",
)


def run_in_subprocess(name: str, jobs: int) -> dict:
    """Each scenario in a fresh process (its own Django setup and database)."""
    overrides = {"jobs": jobs, **SCENARIOS[name]}
    done = subprocess.run(
        [sys.executable, __file__, "--scenario", json.dumps(overrides)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise SystemExit(f"scenario {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)  # internal: run one scenario, print its JSON
    args = parser.parse_args(argv)
    if args.scenario:
        options = Options(**json.loads(args.scenario))
        timeout = 120 + 6 * math.ceil(options.jobs / PROVIDER_CONCURRENCY) * options.latency
        print(json.dumps({**measure(options, timeout), "options": asdict(options)}, default=str))
        return 0
    results = {}
    for name in args.only or SCENARIOS:
        started = time.monotonic()
        results[name] = run_in_subprocess(
            name, args.jobs if name != "slow" else min(args.jobs, SCENARIOS["slow"]["jobs"])
        )
        print(f"[{name}] {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(results)
    print(json.dumps(summary(results)))
    return 0


def summary(results: dict) -> dict:
    line: dict = {}
    if "dispatcher" in results:
        line.update({k: results["dispatcher"].get(k) for k in KEYS})
    if "naive" in results:
        line.update({f"naive_{k}": results["naive"].get(k) for k in KEYS})
    if "pool" in results and "dispatcher" in results and results["pool"]["makespan_s"]:
        line["pool_2_keys_efficiency"] = results["pool"]["efficiency"]
        line["pool_2_keys_speedup"] = round(
            results["dispatcher"]["makespan_s"] / results["pool"]["makespan_s"], 2
        )
    if "slow" in results:
        line["polls_per_job_median_at_15s"] = results["slow"]["polls_per_job_median"]
        line["polls_per_job_p95_at_15s"] = results["slow"]["polls_per_job_p95"]
        line["efficiency_at_15s"] = results["slow"]["efficiency"]
    return line


def print_table(results: dict) -> None:
    names = list(results)
    rows = ["makespan_s", "ideal_s", *KEYS, "failed", "create_errors"]
    print(f"{'figure':32}" + "".join(f"{n:>14}" for n in names))
    for key in rows:
        print(f"{key:32}" + "".join(f"{results[n].get(key)!s:>14}" for n in names))


if __name__ == "__main__":
    sys.exit(main())
