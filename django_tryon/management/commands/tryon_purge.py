"""Delete shoppers' images past their retention time (run daily from cron if you do not use Celery beat)."""

from typing import Any

from django.core.management.base import BaseCommand

from ... import services


class Command(BaseCommand):
    help = "Delete images of finished try-ons older than RETENTION_DAYS and saved photos older than PHOTO_RETENTION_DAYS."

    def handle(self, *args: Any, **opts: Any) -> None:
        counts = services.purge()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
