"""The dispatcher's safety net from cron or a process manager, when Celery beat does not run it."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from ...pipeline import tick


class Command(BaseCommand):
    help = "Admit queued try-ons, resume overdue ones (lost messages, killed workers), expire stale queue entries."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--loop",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Keep ticking every SECONDS (cron cannot run more often than once a minute).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        while True:
            counts = tick()
            if opts["loop"] is None or opts["verbosity"] > 1:
                self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
            if opts["loop"] is None:
                return
            time.sleep(opts["loop"])
