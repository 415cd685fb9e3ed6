"""Run the DashScope sandbox (``python -m django_tryon.sandbox``) from manage.py."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the DashScope look-alike sandbox. Options as for: python -m django_tryon.sandbox --help"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("sandbox_args", nargs=argparse.REMAINDER, help="options passed to the sandbox")

    def handle(self, *args: Any, **opts: Any) -> None:
        from ...sandbox.__main__ import main

        main(opts["sandbox_args"])
