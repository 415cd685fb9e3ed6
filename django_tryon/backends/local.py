"""LocalBackend: the offline engine inside the Celery worker. No cloud, no HTTP, no account.

Inputs reach it through its own ``upload`` (bytes written to a private work folder) or, when the
storage gives absolute URLs, by download. A submit renders at once; poll and download then read the
stored verdict and picture, and every work file is removed as soon as it has been used.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from ..exceptions import TryOnImproperlyInstalled, TryOnProviderRejected
from .base import BaseTryOnBackend, Capabilities, PollResult, RemoteState, SubmitResult, TryOnInput
from .http import HTTPClient

SCHEME = "local://"
STALE_AFTER = 3600  # seconds before a forgotten work file is removed


class LocalBackend(BaseTryOnBackend):
    """Runs ``django_tryon.engine`` in-process: preview-quality try-ons for shops without a provider."""

    name = "local"
    default_options: ClassVar[dict[str, Any]] = {
        "model": "engine",
        "work_dir": None,  # default: <tmp>/django_tryon_local
        "check_person": True,  # refuse unusable photos with InvalidPerson, like the provider
        "timeout": 30.0,  # for inputs given as http(s) URLs
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        try:
            from .. import engine  # noqa: F401 - imported only to fail early when the extra is missing
        except ImportError as err:
            raise TryOnImproperlyInstalled("mediapipe and opencv", "engine") from err
        self.work_dir = Path(self.options["work_dir"] or Path(tempfile.gettempdir()) / "django_tryon_local")
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.http = HTTPClient(self.name, timeout=self.options["timeout"])

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_concurrency=1,
            submit_rate=100.0,
            typical_duration=0.0,
            price_per_image=Decimal("0"),
            currency="",
            supports_upload=True,
            prefers_upload=True,
        )

    # -- files ---------------------------------------------------------------------------------
    def _path(self, url: str) -> Path:
        name = url[len(SCHEME) :] if url.startswith(SCHEME) else url
        if "/" in name or name.startswith("."):
            raise TryOnProviderRejected(f"Not a work file of this backend: {name!r}", code="InvalidURL")
        return self.work_dir / name

    def _sweep_stale(self) -> None:
        cutoff = time.time() - STALE_AFTER
        for path in self.work_dir.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        self._sweep_stale()
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "img"
        name = f"{uuid.uuid4().hex}.{ext}"
        fd = os.open(self.work_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        return SCHEME + name

    def _read_input(self, url: str) -> bytes:
        if url.startswith(SCHEME):
            return self._take(url, "The input image is gone (uploaded more than an hour ago?).", "InvalidURL")
        return self.http.download(url)

    def _take(self, url: str, missing: str, code: str) -> bytes:
        """Read a work file and delete it (personal data is not kept once used)."""
        path = self._path(url)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TryOnProviderRejected(missing, code=code) from None
        path.unlink(missing_ok=True)
        return data

    # -- interface -----------------------------------------------------------------------------
    def submit(self, request: TryOnInput) -> SubmitResult:
        from ..engine import RenderError, check_person, render_tryon

        task_id = uuid.uuid4().hex
        started = datetime.now(timezone.utc)
        person = self._read_input(request.person_image_url)
        top = self._read_input(request.top_garment_url) if request.top_garment_url else None
        bottom = self._read_input(request.bottom_garment_url) if request.bottom_garment_url else None
        record: dict[str, Any] = {"submitted": started.isoformat()}
        verdict = check_person(person) if self.options["check_person"] else None
        if verdict is not None and not verdict.ok:
            record.update(status="FAILED", code="InvalidPerson", message=" ".join(verdict.reasons))
        else:
            try:
                image = render_tryon(
                    person, top, bottom, resolution=request.resolution, restore_face=request.restore_face
                )
            except RenderError as err:
                record.update(status="FAILED", code=err.code, message=str(err))
            else:
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=92)
                (self.work_dir / f"{task_id}.jpg").write_bytes(buffer.getvalue())
                record.update(status="SUCCEEDED")
        record["ended"] = datetime.now(timezone.utc).isoformat()
        (self.work_dir / f"{task_id}.json").write_text(json.dumps(record))
        return SubmitResult(remote_id=task_id, request_id=task_id)

    def poll(self, remote_id: str) -> PollResult:
        try:
            record = json.loads(self._path(f"{remote_id}.json").read_text())
        except (FileNotFoundError, ValueError):
            return PollResult(
                remote_id,
                RemoteState.UNKNOWN,
                error_code="Unknown",
                error_message="The local task is unknown or was already collected.",
            )
        succeeded = record["status"] == "SUCCEEDED"
        if not succeeded:  # nothing left to collect: forget the task now
            self._path(f"{remote_id}.json").unlink(missing_ok=True)
        return PollResult(
            remote_id=remote_id,
            state=RemoteState.SUCCEEDED if succeeded else RemoteState.FAILED,
            request_id=remote_id,
            submitted_at=datetime.fromisoformat(record["submitted"]),
            scheduled_at=datetime.fromisoformat(record["submitted"]),
            ended_at=datetime.fromisoformat(record["ended"]),
            result_url=f"{SCHEME}{remote_id}.jpg" if succeeded else None,
            error_code=record.get("code", ""),
            error_message=record.get("message", ""),
            image_count=1 if succeeded else 0,
            raw=record,
        )

    def download(self, url: str) -> bytes:
        data = self._take(url, "The rendered picture is gone.", "ResultUnavailable")
        self._path(url).with_suffix(".json").unlink(missing_ok=True)
        return data

    def cancel(self, remote_id: str) -> bool:
        return False  # a local render is finished before anyone can cancel it
