"""Start the demo: the DashScope sandbox (without a real key), a Celery worker (with beat) on the
file-system broker, then the development server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the example shop with an embedded Celery worker; no Redis or RabbitMQ needed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args: Any, **opts: Any) -> None:
        settings.BROKER_DIR.mkdir(parents=True, exist_ok=True)
        (settings.BROKER_DIR / "done").mkdir(exist_ok=True)
        project_dir = Path(settings.BASE_DIR)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "example_project",
                "worker",
                "--beat",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            ],
            cwd=project_dir,
        )
        children = [worker]
        if settings.SHOP_USES_SANDBOX:
            latency = os.environ.get("SHOP_SANDBOX_LATENCY", "4")
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "django_tryon.sandbox",
                        "--port",
                        str(settings.SANDBOX_PORT),
                        "--latency",
                        latency,
                        "--quiet",
                    ],
                )
            )
            self.stdout.write(
                self.style.WARNING(
                    f"No DASHSCOPE_API_KEY: try-ons go to the bundled DashScope sandbox on port {settings.SANDBOX_PORT} "
                    "(offline, preview-quality pictures)."
                )
            )
        self.stdout.write(
            self.style.SUCCESS(f"Example shop: http://{opts['addrport']}/  (admin: /admin/, admin / admin)")
        )
        try:
            # Static files come from runserver in DEBUG and with --insecure otherwise (a local demo only).
            call_command(
                "runserver", opts["addrport"], use_reloader=False, insecure_serving=not settings.DEBUG
            )
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=20)
