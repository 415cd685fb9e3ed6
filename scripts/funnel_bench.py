"""The time funnel analytics adds: to a request (buffering), after it (the upsert), and to a worker.

Runs on the test settings (a throwaway SQLite file, migrated here; ``DJANGO_TRYON_TEST_DB=postgres`` for
PostgreSQL) and prints median and p95 of:

* ``record()`` during a request: what a page or an API call pays (a dict update under a lock);
* the endpoint ``POST /tryon/funnel/`` with 10 events, up to its response (the counts still buffered);
* the flush after the response (``request_finished``): one ``INSERT … ON CONFLICT`` for the batch;
* the ``tryon_succeeded`` receiver in a worker (no request: it writes at once).

Usage: ``python scripts/funnel_bench.py [--rounds N]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summary(samples: list[float]) -> dict[str, float]:
    """Median and p95 of samples in milliseconds."""
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 4),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
    }


def timed(action: Callable[[], Any], rounds: int) -> dict[str, float]:
    """Median and p95 of ``action`` in milliseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings

    if connection.vendor == "postgresql":  # never the developer's own database: the test one
        from django.test.utils import setup_databases, teardown_databases

        state = setup_databases(verbosity=0, interactive=False)
    else:
        call_command("migrate", verbosity=0)
        state = None
    try:
        from django_tryon import funnel, signals
        from django_tryon.models import TryOn
        from tests.testapp.models import Product

        products = [Product.objects.create(name=f"Bench {i}") for i in range(5)]
        funnel._request_started()  # as inside a request: counts are buffered
        record = timed(lambda: funnel.record(products[0].pk, "shown"), rounds * 10)
        funnel._request_finished()

        client = Client()
        session = client.session
        session.save()
        events = json.dumps(
            [{"step": s, "product": str(p.pk)} for p in products for s in ("shown", "opened")]
        )

        posts: list[float] = []

        def one_request() -> None:
            client.cookies.pop(settings.SESSION_COOKIE_NAME, None)
            fresh = client.session  # a new shopper each time: every event counts
            fresh.save()
            start = time.perf_counter()
            assert client.post("/tryon/funnel/", {"events": events}).json()["recorded"] == 10
            posts.append((time.perf_counter() - start) * 1000)

        # The test client closes the response (request_finished) inside post(): measure both parts apart.
        finished = funnel._request_finished
        flushes: list[float] = []

        def measured_finish(**kwargs: Any) -> None:
            start = time.perf_counter()
            finished(**kwargs)
            flushes.append((time.perf_counter() - start) * 1000)

        from django.core.signals import request_finished

        request_finished.disconnect(dispatch_uid="django_tryon.funnel.finished")
        request_finished.connect(measured_finish, dispatch_uid="django_tryon.funnel.finished")
        with override_settings(
            TRYON={**settings.TRYON, "THROTTLE_RATES": {}, "FUNNEL_DAILY_EVENTS_PER_ADDRESS": None}
        ):
            for _ in range(rounds):
                one_request()
        request_finished.disconnect(dispatch_uid="django_tryon.funnel.finished")
        request_finished.connect(finished, dispatch_uid="django_tryon.funnel.finished")
        flush = summary(flushes)
        response = summary(
            [post - done for post, done in zip(posts, flushes, strict=True)]
        )  # up to the response

        job = TryOn.objects.create(
            product=products[0], owner_key="bench", status="succeeded", backend="bench", model_name="m"
        )
        worker = timed(lambda: signals.tryon_succeeded.send_robust(sender=TryOn, tryon=job), rounds)
        figures = {
            "database": connection.vendor,
            "record_in_request": record,
            "endpoint_10_events_until_response": response,
            "flush_after_response": flush,
            "succeeded_receiver_in_worker": worker,
        }
        for name, value in figures.items():
            print(f"{name:36} {value}")
        print(json.dumps(figures))
    finally:
        if state is not None:
            teardown_databases(state, verbosity=0)
        elif connection.vendor == "sqlite":
            name = settings.DATABASES["default"]["NAME"]
            connection.close()
            Path(str(name)).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
