"""The one entry point for try-on jobs: create, dispatch, submit, poll, retry, cancel, delete, sweep.

The REST API, the admin, management commands and Celery tasks all call these functions; tasks hold
no logic of their own. Status moves only through ``TryOn.objects.transition`` (a guarded UPDATE), so
running any step twice is harmless.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import time
from datetime import datetime, timedelta
from typing import IO, Any, Callable

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from . import quotas, signals
from .backends import get_backend
from .backends.base import BaseTryOnBackend, RemoteState, TryOnInput
from .conf import tryon_settings
from .exceptions import (
    TryOnConfigurationError,
    TryOnError,
    TryOnProviderRejected,
    TryOnRetryableError,
    TryOnValidationError,
)
from .models import Garment, PersonPhoto, TryOn
from .owners import Owner
from .storage import get_tryon_storage, public_signed_url, result_upload_to, storage_absolute_url
from .validators import CheckedImage, check_image

logger = logging.getLogger("django_tryon")

RESOLUTIONS = (-1, 1024, 1280)
IN_FLIGHT = ("submitted", "running")
UNFINISHED = ("queued", "submitting", "submitted", "running")
#: Query-string markers of a presigned storage URL (S3, OSS, GCS, Azure SAS).
PRESIGNED_MARKERS = ("X-Amz-Signature=", "Signature=", "X-Goog-Signature=", "sig=")


# -- create --------------------------------------------------------------------------------------
def _pick_garments(
    product: Any, top: Garment | None, bottom: Garment | None
) -> tuple[Garment | None, Garment | None]:
    if product is not None and top is None and bottom is None:
        for garment in product.tryon_garments.filter(is_active=True).order_by("pk"):
            if garment.slot == "top" and top is None:
                top = garment
            elif garment.slot == "bottom" and bottom is None:
                bottom = garment
    for garment, slot in ((top, "top"), (bottom, "bottom")):
        if garment is None:
            continue
        if not garment.is_active:
            raise TryOnValidationError(f"Garment {garment.pk} is not offered for try-on.", code="InvalidGarment")
        if garment.slot != slot:
            raise TryOnValidationError(
                f"A {garment.get_kind_display().lower()} cannot be sent as the {slot}.", code="InvalidGarment"
            )
    if top is not None and top.kind == Garment.Kind.ONE_PIECE and bottom is not None:
        raise TryOnValidationError("A one-piece is tried on alone, without a bottom.", code="InvalidGarment")
    return top, bottom


def _garment_bytes(garment: Garment) -> bytes:
    with garment.image.open("rb") as fh:
        return fh.read()


def create_tryon(
    *,
    person_image: bytes | IO[bytes] | None = None,
    person_photo: PersonPhoto | None = None,
    consent: bool = True,
    top_garment: Garment | None = None,
    bottom_garment: Garment | None = None,
    top_image: bytes | IO[bytes] | None = None,
    bottom_image: bytes | IO[bytes] | None = None,
    product: Any = None,
    user: Any = None,
    owner_key: str = "",
    resolution: int | None = None,
    restore_face: bool | None = None,
    model: str | None = None,
    dispatch_now: bool = True,
) -> TryOn:
    """Validate everything, store the inputs under random names and create a ``queued`` job.

    Garments come as ``Garment`` rows (``top_garment``/``bottom_garment``, or the active garments of
    ``product``) or as raw flat-lay files (``top_image``/``bottom_image``). After the transaction
    commits, the job is dispatched unless ``dispatch_now`` is false.

    Raises:
        TryOnValidationError: bad image or parameter (nothing stored, nothing sent).
        TryOnConfigurationError: the backend is not configured.
    """
    resolution = tryon_settings.DEFAULT_RESOLUTION if resolution is None else resolution
    restore_face = tryon_settings.RESTORE_FACE if restore_face is None else restore_face
    if resolution not in RESOLUTIONS:
        raise TryOnValidationError("resolution must be -1, 1024 or 1280.", code="InvalidParameter")
    if not isinstance(restore_face, bool):
        raise TryOnValidationError("restore_face must be true or false.", code="InvalidParameter")
    images_given = top_image is not None or bottom_image is not None
    top_garment, bottom_garment = _pick_garments(None if images_given else product, top_garment, bottom_garment)
    if top_garment is not None and top_image is not None or bottom_garment is not None and bottom_image is not None:
        raise TryOnValidationError("Give each slot either a garment or an image, not both.", code="InvalidGarment")
    if person_photo is not None and person_image is not None:
        raise TryOnValidationError("Give person_image or person_photo, not both.", code="InvalidParameter")
    if person_photo is None and person_image is None:
        raise TryOnValidationError("Give a person photo.", code="InvalidParameter")
    # A saved photo was checked when it was saved; the job references it instead of storing a copy.
    checked_person = check_image(person_image, field="person_image") if person_image is not None else None
    person_hash = person_photo.content_hash if person_photo is not None else _sha256(checked_person.content)
    sources = {
        "top_image": top_image if top_image is not None else (top_garment and _garment_bytes(top_garment)),
        "bottom_image": bottom_image if bottom_image is not None else (bottom_garment and _garment_bytes(bottom_garment)),
    }
    checked_garments = {f: check_image(src, field=f) for f, src in sources.items() if src}
    if not checked_garments:
        raise TryOnValidationError(code="InvalidGarment")
    backend = get_backend(model=model)
    owner = Owner.of(user, owner_key)
    dedup_key = _dedup_key(owner, person_hash, checked_garments, backend, resolution, restore_face)
    existing = _recent_duplicate(owner, dedup_key)
    if existing is not None:
        logger.info("try-on %s reused for an identical request", existing.public_id)
        return existing
    quotas.check(owner, backend.model)  # fail fast, before writing any file

    job = TryOn(
        **owner.fields(),
        person_photo=person_photo,
        consent_at=(person_photo.consent_at if person_photo is not None else timezone.now()) if consent else None,
        dedup_key=dedup_key,
        product=product if product is not None else getattr(top_garment or bottom_garment, "product", None),
        top_garment=top_garment,
        bottom_garment=bottom_garment,
        backend=backend.name,
        model_name=backend.model,
        resolution=resolution,
        restore_face=restore_face,
    )
    written: list[str] = []
    try:
        if checked_person is not None:
            _save_file(job.person_image, "person", checked_person, written)
        for field, checked in checked_garments.items():
            _save_file(getattr(job, field), field, checked, written)
        with transaction.atomic():
            quotas.gate(owner, backend.model)
            job.save()
            quotas.record(job, owner)
            if dispatch_now:
                transaction.on_commit(lambda: dispatch(job.pk))
    except BaseException:
        storage = get_tryon_storage()
        for name in written:  # never leave a half-created job's files behind
            storage.delete(name)
        raise
    logger.info("try-on %s created (%s/%s)", job.public_id, job.backend, job.model_name)
    return job


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _dedup_key(owner: Owner, person_hash: str, garments: dict, backend: Any, resolution: int, restore: bool) -> str:
    digest = hashlib.sha256()
    for part in (str(owner.user.pk if owner.user is not None else ""), owner.key, backend.name, backend.model,
                 str(resolution), str(restore), person_hash):
        digest.update(part.encode() + b"\0")
    for field in ("top_image", "bottom_image"):
        checked = garments.get(field)
        digest.update(field.encode() + hashlib.sha256(checked.content).digest() if checked else b"-")
    return digest.hexdigest()


def _recent_duplicate(owner: Owner, dedup_key: str) -> TryOn | None:
    """A job of the same owner for the same photo, garments and parameters, not failed, within DEDUP_TTL."""
    ttl = tryon_settings.DEDUP_TTL
    if not ttl or not owner.is_shopper:  # only shoppers' requests are deduplicated
        return None
    since = timezone.now() - timedelta(seconds=ttl)
    return (
        owner.scope(TryOn.objects.filter(dedup_key=dedup_key, created_at__gte=since))
        .exclude(status__in=("failed", "canceled"))
        .order_by("-created_at")
        .first()
    )


def queue_info(job: TryOn) -> dict[str, float | int | None]:
    """Queue position and ETA while queued, elapsed time while running (for shoppers' progress)."""
    now = timezone.now()
    info: dict[str, float | int | None] = {"queue_position": None, "eta_seconds": None, "elapsed_seconds": None}
    if job.status in ("queued", "submitting"):
        ahead = TryOn.objects.filter(status__in=("queued", "submitting"), backend=job.backend, created_at__lt=job.created_at).count()
        try:
            caps = backend_for(job).capabilities
            duration, slots = caps.typical_duration or 5.0, max(1, caps.max_concurrency)
        except (TryOnError, TryOnConfigurationError):
            duration, slots = 20.0, 5
        info["queue_position"] = ahead + 1
        info["eta_seconds"] = round(duration * (1 + ahead // slots), 1)
    elif job.status in ("submitted", "running"):
        info["elapsed_seconds"] = round((now - (job.submitted_at or job.created_at)).total_seconds(), 1)
    return info


# -- saved photos --------------------------------------------------------------------------------
def save_photo(*, image: bytes | IO[bytes], user: Any = None, owner_key: str = "", consent: bool = False) -> PersonPhoto:
    """Keep a shopper's person photo for reuse; needs explicit consent (stored with its time).

    The same photo is kept once per owner (the existing one is returned, its consent renewed), and at
    most ``MAX_PHOTOS_PER_OWNER`` photos per owner (the oldest are deleted to make room).
    """
    if not consent:
        err = TryOnValidationError("Consent is required to keep your photo.", code="consent_required")
        err.field = "consent"  # type: ignore[attr-defined]
        raise err
    checked = check_image(image, field="image")
    owner = Owner.of(user, owner_key)
    content_hash = _sha256(checked.content)
    mine = owner.scope(PersonPhoto.objects.all()) if owner.is_shopper else PersonPhoto.objects.none()
    existing = mine.filter(content_hash=content_hash).first()
    if existing is not None:
        PersonPhoto.objects.filter(pk=existing.pk).update(consent_at=timezone.now())
        existing.refresh_from_db()
        return existing
    photo = PersonPhoto(**owner.fields(), content_hash=content_hash, consent_at=timezone.now())
    photo.image.save(f"person.{checked.extension}", ContentFile(checked.content), save=False)
    try:
        photo.save()
    except BaseException:
        get_tryon_storage().delete(photo.image.name)
        raise
    cap = tryon_settings.MAX_PHOTOS_PER_OWNER
    if cap is not None and owner.is_shopper:
        for old in mine.exclude(pk=photo.pk).order_by("-created_at", "-pk")[max(0, cap - 1):]:
            delete_photo(old)
    return photo


def delete_photo(photo: PersonPhoto) -> None:
    """Delete a saved photo and its file. Try-ons made from it lose their person photo too (they
    referenced it); a job still waiting for the provider then fails rather than send a deleted photo."""
    name = photo.image.name
    photo.delete()
    if name:
        get_tryon_storage().delete(name)


def _save_file(field_file: Any, stem: str, checked: CheckedImage, written: list[str]) -> None:
    field_file.save(f"{stem}.{checked.extension}", ContentFile(checked.content), save=False)
    written.append(field_file.name)


# -- dispatch and submit -------------------------------------------------------------------------
def dispatch(pk: int) -> bool:
    """Move a queued job to ``submitting`` and enqueue its submit task after commit."""
    if not TryOn.objects.transition(pk, ["queued"], "submitting"):
        return False
    from .tasks import submit_tryon

    transaction.on_commit(lambda: _enqueue(submit_tryon, pk))
    return True


def _enqueue(task: Any, pk: int) -> bool:
    """Send a task; if the broker is unreachable, log it and leave the job to the sweep (never a 500)."""
    try:
        task.delay(pk)
    except Exception:  # kombu/redis/amqp connection errors differ by transport
        logger.exception("could not enqueue %s for try-on %s; the sweep will retry", task.name, pk)
        return False
    return True


def backend_for(job: TryOn) -> BaseTryOnBackend:
    """The configured backend, on the model this job was created for."""
    return get_backend(model=job.model_name or None)


def input_url(field_file: Any, backend: BaseTryOnBackend) -> str:
    """A URL the provider can download a stored file from, per ``TRYON["INPUT_URLS"]``.

    ``auto``: a presigned storage URL (S3/OSS) if the storage gives one, else a signed, expiring URL
    of this app under ``PUBLIC_BASE_URL``, else the provider's temporary upload. In-process backends
    (``prefers_upload``) always get the bytes through their upload.
    """
    name = field_file.name
    strategy = tryon_settings.INPUT_URLS
    if strategy == "auto" and backend.capabilities.prefers_upload:
        strategy = "upload"
    if strategy in ("auto", "storage"):
        url = storage_absolute_url(name)
        if url and (strategy == "storage" or any(m in url for m in PRESIGNED_MARKERS)):
            return url
        if strategy == "storage":
            raise TryOnConfigurationError(
                "TRYON['INPUT_URLS'] = 'storage' but the storage gives no absolute URL for its files."
            )
    if strategy in ("auto", "signed") and tryon_settings.PUBLIC_BASE_URL:
        return public_signed_url(field_file)
    if strategy in ("auto", "upload") and backend.capabilities.supports_upload:
        with get_tryon_storage().open(name, "rb") as fh:
            content = fh.read()
        ext = name.rsplit(".", 1)[-1]
        return backend.upload(content, name.rsplit("/", 1)[-1], f"image/{'jpeg' if ext == 'jpg' else ext}")
    raise TryOnConfigurationError(
        "The provider cannot reach the input images: set TRYON['PUBLIC_BASE_URL'] to this site's public URL, "
        "or use a storage with presigned URLs (django-storages S3/OSS)."
    )


def submit(pk: int) -> float | None:
    """Send a ``submitting`` job to the provider. Returns the countdown to the first poll, or None.

    Raises ``TryOnRetryableError`` for the task to retry; final errors mark the job failed here.
    """
    job = TryOn.objects.filter(pk=pk, status="submitting").first()
    if job is None:
        return None  # duplicate delivery, canceled meanwhile, or already submitted
    try:
        backend = backend_for(job)
        if not job.person_file:
            raise TryOnValidationError("The person photo was deleted before the try-on was sent.",
                                       code="InvalidParameter")
        request = TryOnInput(
            person_image_url=input_url(job.person_file, backend),
            top_garment_url=input_url(job.top_image, backend) if job.top_image else None,
            bottom_garment_url=input_url(job.bottom_image, backend) if job.bottom_image else None,
            resolution=job.resolution,
            restore_face=job.restore_face,
        )
        result = backend.submit(request)
    except TryOnRetryableError:
        raise
    except (TryOnError, TryOnConfigurationError) as err:
        fail(pk, err, sources=["submitting"])
        return None
    now = timezone.now()
    accepted = TryOn.objects.transition(
        pk, ["submitting"], "submitted", remote_id=result.remote_id, request_id=result.request_id, submitted_at=now
    )
    if not accepted:  # canceled while we were submitting: do not let the provider work (and bill) for nothing
        _cancel_remote_quietly(backend, result.remote_id)
        return None
    job.refresh_from_db()
    _send_after_commit(signals.tryon_submitted, job)
    logger.info("try-on %s submitted as %s", job.public_id, result.remote_id)
    first = tryon_settings.FIRST_POLL_DELAY
    return float(backend.capabilities.typical_duration if first is None else first)


# -- poll and result -----------------------------------------------------------------------------
def poll(pk: int) -> float | None:
    """Ask the provider about an in-flight job. Returns the countdown to the next poll, or None when done.

    On SUCCEEDED the result is downloaded into our storage before the job is marked succeeded.
    Past ``POLL_DEADLINE`` the job fails with code ``Timeout``.
    """
    job = TryOn.objects.filter(pk=pk, status__in=IN_FLIGHT).first()
    if job is None:
        return None
    backend = backend_for(job)
    if _past_deadline(job):
        _cancel_remote_quietly(backend, job.remote_id)
        fail(pk, TryOnError(f"No result within {tryon_settings.POLL_DEADLINE} s.", code="Timeout"))
        return None
    try:
        state = backend.poll(job.remote_id)
    except TryOnRetryableError:
        raise
    except TryOnError as err:
        fail(pk, err)
        return None
    TryOn.objects.filter(pk=pk).update(
        updated_at=timezone.now(),
        poll_count=F("poll_count") + 1,
        remote_submitted_at=state.submitted_at or job.remote_submitted_at,
        remote_scheduled_at=state.scheduled_at or job.remote_scheduled_at,
        remote_ended_at=state.ended_at or job.remote_ended_at,
    )
    if state.state is RemoteState.SUCCEEDED:
        _store_result(job, backend, state.result_url or "", state.image_count)
        return None
    if state.state in (RemoteState.FAILED, RemoteState.UNKNOWN):
        fail(pk, TryOnProviderRejected(state.error_message, code=state.error_code or "ProviderError"), raw=state.raw)
        return None
    if state.state is RemoteState.CANCELED:
        if TryOn.objects.transition(pk, IN_FLIGHT, "canceled", error_code="Canceled", error_message="Canceled at the provider."):
            logger.info("try-on %s canceled at the provider", job.public_id)
        return None
    if state.state is RemoteState.RUNNING:
        TryOn.objects.transition(pk, ["submitted"], "running")
    return _next_poll_countdown(job)


def _past_deadline(job: TryOn) -> bool:
    started = job.submitted_at or job.created_at
    return timezone.now() > started + timedelta(seconds=tryon_settings.POLL_DEADLINE)


def _next_poll_countdown(job: TryOn) -> float:
    started = job.submitted_at or job.created_at
    remaining = (started + timedelta(seconds=tryon_settings.POLL_DEADLINE) - timezone.now()).total_seconds()
    return max(0.01, min(float(tryon_settings.POLL_INTERVAL), remaining + 0.5))


def _store_result(job: TryOn, backend: BaseTryOnBackend, url: str, image_count: int) -> None:
    """Download the provider's result (its link dies in 24 h) into our storage, then mark succeeded."""
    try:
        content = backend.download(url)
        checked = _check_result(content)
    except TryOnRetryableError:
        raise
    except TryOnError as err:
        fail(job.pk, err)
        return
    storage = get_tryon_storage()
    stored = storage.save(result_upload_to(job, f"result.{checked}"), ContentFile(content))
    done = TryOn.objects.transition(
        job.pk, IN_FLIGHT, "succeeded", result_image=stored, image_count=image_count or 1, error_code="", error_message=""
    )
    if not done:  # canceled or failed meanwhile: keep no orphan file
        storage.delete(stored)
        return
    job.refresh_from_db()
    _send_after_commit(signals.tryon_succeeded, job)
    logger.info("try-on %s succeeded", job.public_id)


def _check_result(content: bytes) -> str:
    """The extension for a downloaded result, after proving it is an image."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = image.format
    except (UnidentifiedImageError, OSError) as err:
        raise TryOnProviderRejected("The provider's result is not an image.", code="ResultUnavailable") from err
    return {"PNG": "png", "BMP": "bmp"}.get(fmt or "", "jpg")


# -- failure, retry, cancel, delete ---------------------------------------------------------------
def fail(pk: int, error: TryOnError | TryOnConfigurationError, *, sources: Any = UNFINISHED, raw: Any = None) -> bool:
    """Mark a job failed with a stable code and a message; send ``tryon_failed`` after commit."""
    code = getattr(error, "code", "ConfigurationError")
    message = getattr(error, "message", str(error))
    provider_error = {"code": code, "message": message}
    if getattr(error, "status_code", None) is not None:
        provider_error["status"] = error.status_code
    if getattr(error, "request_id", ""):
        provider_error["request_id"] = error.request_id
    if isinstance(raw, dict):
        provider_error["output"] = raw.get("output")
    done = TryOn.objects.transition(
        pk, sources, "failed", error_code=code[:64], error_message=message, provider_error=provider_error
    )
    if done:
        job = TryOn.objects.get(pk=pk)
        logger.warning("try-on %s failed: %s", job.public_id, code)
        _send_after_commit(signals.tryon_failed, job, code=code, message=message)
    return done


def retry_delay(retries: int, error: TryOnRetryableError) -> float | None:
    """Seconds to wait before retry number ``retries + 1`` (exponential, full jitter), or None to give up."""
    if retries >= tryon_settings.MAX_RETRIES:
        return None
    ceiling = min(float(tryon_settings.RETRY_BACKOFF_MAX), 2.0 ** (retries + 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if error.retry_after:
        delay = max(delay, float(error.retry_after))
    return delay


def retry(job: TryOn, *, owner: Owner | None = None) -> bool:
    """Start a new attempt of a failed or canceled job; the old attempt is kept in ``history``.

    The attempt is paid: it goes through the quota gate, charged to ``owner`` (the shopper asking;
    none for the merchant's own retries, which only the site budget limits). Raises
    ``TryOnQuotaExceeded`` when over a limit. Returns False when the job cannot be retried.
    """
    owner = owner or Owner()
    entry = {
        "attempt": job.attempts,
        "remote_id": job.remote_id,
        "request_id": job.request_id,
        "status": job.status,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status not in ("failed", "canceled"):
        return False
    if not job.person_file:
        raise TryOnValidationError("The person photo of this try-on was deleted.", code="InvalidParameter")
    with transaction.atomic():
        quotas.gate(owner, job.model_name)
        done = TryOn.objects.transition(
            job.pk,
            ["failed", "canceled"],
            "queued",
            history=[*job.history, entry],
            attempts=F("attempts") + 1,
            remote_id="",
            request_id="",
            error_code="",
            error_message="",
            provider_error={},
            remote_submitted_at=None,
            remote_scheduled_at=None,
            remote_ended_at=None,
            submitted_at=None,
            finished_at=None,
            poll_count=0,
        )
        if done:
            quotas.record(job, owner)
            transaction.on_commit(lambda: dispatch(job.pk))
    job.refresh_from_db()
    return done


def cancel(job: TryOn) -> bool:
    """Cancel a job not yet running. Jobs the provider already started cannot be canceled (its rule)."""
    canceled = dict(error_code="Canceled", error_message="Canceled by request.")
    with transaction.atomic():
        if TryOn.objects.transition(job.pk, ["queued"], "canceled", **canceled):
            quotas.release(job)  # never sent: the attempt costs nothing and gives its slot back
            job.refresh_from_db()
            return True
    if TryOn.objects.transition(job.pk, ["submitting"], "canceled", **canceled):
        job.refresh_from_db()  # may have reached the provider: the attempt stays counted
        return True
    job.refresh_from_db()
    if job.status == "submitted" and job.remote_id:
        if backend_for(job).cancel(job.remote_id):
            done = TryOn.objects.transition(job.pk, ["submitted", "running"], "canceled", **canceled)
            job.refresh_from_db()
            return done
    return False


def refresh(job: TryOn) -> TryOn:
    """Poll the provider now for an in-flight job (the admin's "refresh now"); the schedule goes on."""
    if job.status in IN_FLIGHT:
        try:
            poll(job.pk)
        except TryOnRetryableError as err:
            logger.info("refresh of try-on %s: %s", job.public_id, err.code)
    job.refresh_from_db()
    return job


def rerun(job: TryOn, *, model: str) -> TryOn:
    """A new job with the same photo, garments and parameters on another model (e.g. ``aitryon-plus``).

    The owner's daily limit is not charged (the merchant asks for it); the site budget still applies.
    """
    def read(field_file: Any) -> bytes | None:
        if not field_file:
            return None
        with field_file.open("rb") as fh:
            return fh.read()

    if not job.person_file:
        raise TryOnValidationError("The person photo of this try-on was deleted.", code="InvalidParameter")
    return create_tryon(
        person_image=read(job.person_image),
        person_photo=None if job.person_image else job.person_photo,
        top_image=read(job.top_image),
        bottom_image=read(job.bottom_image),
        product=job.product,
        resolution=job.resolution,
        restore_face=job.restore_face,
        model=model,
    )


def delete_images(job: TryOn) -> int:
    """Delete a job's own person photo, garment snapshots and result from storage, keeping the record.

    A referenced saved photo is the shopper's (deleted with it or by its own retention); the job lets go of it.
    """
    storage = get_tryon_storage()
    names = job.owned_files()
    for name in names:
        storage.delete(name)
    TryOn.objects.filter(pk=job.pk).update(person_image="", person_photo=None, top_image="", bottom_image="",
                                           result_image="", updated_at=timezone.now())
    job.refresh_from_db()
    return len(names)


def purge(*, now: datetime | None = None) -> dict[str, int]:
    """Delete personal images past their retention time (``RETENTION_DAYS``, ``PHOTO_RETENTION_DAYS``).

    Finished try-ons keep their record (for the figures) but lose their person photo, garment snapshots
    and result; saved photos are deleted with their file. Returns counts.
    """
    now = now or timezone.now()
    counts = {"tryons": 0, "images": 0, "photos": 0}
    days = tryon_settings.RETENTION_DAYS
    if days is not None:
        old = TryOn.objects.filter(status__in=("succeeded", "failed", "canceled"), created_at__lt=now - timedelta(days=days))
        for job in old.exclude(person_image="", result_image="", top_image="", bottom_image="",
                               person_photo__isnull=True).iterator():
            counts["images"] += delete_images(job)
            counts["tryons"] += 1
    photo_days = tryon_settings.PHOTO_RETENTION_DAYS
    if photo_days is not None:
        for photo in PersonPhoto.objects.filter(created_at__lt=now - timedelta(days=photo_days)).iterator():
            delete_photo(photo)
            counts["photos"] += 1
    if any(counts.values()):
        logger.info("retention purge: %s", counts)
    return counts


def delete(job: TryOn) -> None:
    """Delete a job and every file it owns (person photo, garment snapshots, result)."""
    if job.status in IN_FLIGHT and job.remote_id:
        _cancel_remote_quietly(backend_for(job), job.remote_id)
    names = job.owned_files()
    job.delete()
    storage = get_tryon_storage()
    for name in names:
        storage.delete(name)


def touch(pk: int) -> None:
    """Record activity on a job (a task is waiting to retry it), so the sweep leaves it alone."""
    TryOn.objects.filter(pk=pk).update(updated_at=timezone.now())


def default_stale_after() -> float:
    """How long a job may go without an update before the sweep recovers it (longer than any backoff)."""
    return max(600.0, 2.0 * float(tryon_settings.RETRY_BACKOFF_MAX), 4.0 * float(tryon_settings.POLL_INTERVAL))


def sweep(*, stale_after: float | None = None) -> dict[str, int]:
    """Recover jobs whose task was lost (broker down, worker killed). Run it periodically (Celery beat).

    Queued jobs are dispatched again, ``submitting`` jobs re-enqueued, in-flight jobs polled (which
    also enforces the deadline). Every running task touches its job, so only lost jobs are stale.
    Returns counts per action.
    """
    from .tasks import poll_tryon, submit_tryon

    stale_after = default_stale_after() if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    counts = {"dispatched": 0, "resubmitted": 0, "polled": 0}
    for job in TryOn.objects.stale(cutoff).only("pk", "status"):
        TryOn.objects.filter(pk=job.pk).update(updated_at=timezone.now())
        if job.status == "queued":
            counts["dispatched"] += dispatch(job.pk)
        elif job.status == "submitting":
            counts["resubmitted"] += _enqueue(submit_tryon, job.pk)
        else:
            counts["polled"] += _enqueue(poll_tryon, job.pk)
    return counts


def run_now(job: TryOn, *, sleep: Callable[[float], None] | None = None, max_wait: float | None = None) -> TryOn:
    """Drive one job through submit and poll in this process (management commands, no worker needed)."""
    sleep = sleep or time.sleep
    deadline = time.monotonic() + (max_wait or tryon_settings.POLL_DEADLINE + 60)
    if job.status == "queued":
        TryOn.objects.transition(job.pk, ["queued"], "submitting")
    retries = 0
    while time.monotonic() < deadline:
        job.refresh_from_db()
        try:
            if job.status == "submitting":
                countdown = submit(job.pk)
            elif job.status in IN_FLIGHT:
                countdown = poll(job.pk)
            else:
                break
            retries = 0
        except TryOnRetryableError as err:
            countdown = retry_delay(retries, err)
            retries += 1
            if countdown is None:
                fail(job.pk, err)
                break
        if countdown:
            sleep(min(countdown, max(0.0, deadline - time.monotonic())))
    job.refresh_from_db()
    if not job.is_terminal:
        fail(job.pk, TryOnError("Gave up waiting for the provider.", code="Timeout"))
        job.refresh_from_db()
    return job


# -- helpers -------------------------------------------------------------------------------------
def _cancel_remote_quietly(backend: BaseTryOnBackend, remote_id: str) -> None:
    try:
        backend.cancel(remote_id)
    except TryOnError as err:
        logger.info("could not cancel provider task %s: %s", remote_id, err.code)


def _send_after_commit(signal: Any, job: TryOn, **kwargs: Any) -> None:
    def send() -> None:
        for receiver, response in signal.send_robust(sender=TryOn, tryon=job, **kwargs):
            if isinstance(response, Exception):
                logger.error("receiver %r of %s raised %r", receiver, signal, response, exc_info=response)

    transaction.on_commit(send)
