"""Recover try-on jobs whose Celery task was lost (run it from cron if you do not use Celery beat)."""

from typing import Any

from django.core.management.base import BaseCommand

from ... import services


class Command(BaseCommand):
    help = "Re-dispatch queued, re-submit stuck and re-poll in-flight try-ons not updated recently."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stale-after", type=float, default=None, help="Seconds without update (default: 600, or more with long backoffs)."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        counts = services.sweep(stale_after=opts["stale_after"])
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
