"""Run one try-on through the real pipeline, in this process, and write the result to a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import services
from ...exceptions import TryOnConfigurationError, TryOnQuotaExceeded, TryOnValidationError
from ...models import TryOn
from ...storage import read_bytes

EXIT_FAILED = 1  # the provider (or the deadline) failed the job
EXIT_INVALID = 2  # bad input: nothing was sent or charged
EXIT_CONFIG = 3  # settings are wrong (API key, public URL, backend)


class Command(BaseCommand):
    help = "Run one try-on end to end (validate, submit, poll, store) and write the result image."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--person", required=True, type=Path, help="Full-body, front-facing person photo."
        )
        parser.add_argument("--top", type=Path, help="Flat-lay top (or one-piece) image.")
        parser.add_argument("--bottom", type=Path, help="Flat-lay bottom image.")
        parser.add_argument(
            "--model", help="Provider model, e.g. aitryon or aitryon-plus (default: settings)."
        )
        parser.add_argument("--resolution", type=int, choices=TryOn.Resolution.values, default=None)
        parser.add_argument(
            "--no-restore-face", action="store_true", help="Let the model generate a new face."
        )
        parser.add_argument("--out", required=True, type=Path, help="Where to write the result image.")
        parser.add_argument("--keep", action="store_true", help="Keep the job and its files in the database.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not (opts["top"] or opts["bottom"]):
            raise CommandError("Give --top and/or --bottom.", returncode=EXIT_INVALID)
        files = {}
        for key in ("person", "top", "bottom"):
            if opts[key] is not None:
                try:
                    files[key] = opts[key].read_bytes()
                except OSError as err:
                    raise CommandError(
                        f"Cannot read --{key} {opts[key]}: {err.strerror}", returncode=EXIT_INVALID
                    ) from err
        try:
            job = services.create_tryon(
                person_image=files["person"],
                top_image=files.get("top"),
                bottom_image=files.get("bottom"),
                model=opts["model"],
                resolution=opts["resolution"],
                restore_face=False if opts["no_restore_face"] else None,
                dispatch_now=False,
            )
        except TryOnValidationError as err:
            raise CommandError(f"{getattr(err, 'field', 'input')}: {err}", returncode=EXIT_INVALID) from None
        except TryOnQuotaExceeded as err:  # the site's daily budget applies to the merchant's runs too
            raise CommandError(str(err), returncode=EXIT_FAILED) from None
        except TryOnConfigurationError as err:
            raise CommandError(str(err), returncode=EXIT_CONFIG) from None
        self.stderr.write(f"try-on {job.public_id}: submitting to {job.backend} ({job.model_name})…")
        try:
            job = services.run_now(job)
            if job.status != "succeeded":
                raise CommandError(
                    f"try-on {job.public_id} {job.status}: {job.error_code}: {job.error_message}",
                    returncode=EXIT_FAILED,
                )
            opts["out"].write_bytes(read_bytes(job.result_image))
            self.stdout.write(f"{opts['out']} ({job.result_image.size} bytes, {job.poll_count} polls)")
        finally:
            if not opts["keep"]:
                services.delete(job)
        sys.stdout.flush()
