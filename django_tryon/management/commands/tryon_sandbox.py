"""Run the sandbox (``python -m django_tryon.sandbox``) from manage.py, with the same options."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the look-alike of DashScope's try-on APIs and FASHN's API (no cloud account needed)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ...sandbox.__main__ import add_arguments

        add_arguments(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        from ...sandbox.__main__ import run
        from ...sandbox.faults import parse

        try:
            parse(opts["faults"])
        except ValueError as err:
            raise CommandError(str(err)) from None
        run(argparse.Namespace(**opts))
