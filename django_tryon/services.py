"""The one entry point for try-on jobs: create, retry, cancel, refresh, delete, saved photos, purge.

The REST API, the admin and management commands call these functions. Admitted jobs move forward in
``pipeline`` (submit, poll, fetch), under ``admission`` control; Celery tasks only call those. Status
moves only through ``TryOn.objects.transition`` (a guarded UPDATE), so running any step twice is harmless.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import admission, pipeline, precheck, quotas, routing, signals, webhooks
from .backends import route
from .conf import tryon_settings
from .exceptions import TryOnError, TryOnValidationError
from .models import (
    ACTIVE,
    ENDED_BADLY,
    IN_FLIGHT,
    STAGE_REFINE,
    STAGE_TRYON,
    TERMINAL,
    Garment,
    PersonPhoto,
    Status,
    TryOn,
    WebhookEndpoint,
)
from .owners import Owner
from .storage import get_tryon_storage, read_bytes
from .validators import CheckedImage, check_image

logger = logging.getLogger("django_tryon")

GENDERS = ("woman", "man")


def _field_error(message: str, field: str) -> TryOnValidationError:
    err = TryOnValidationError(message, code="InvalidParameter")
    err.field = field
    return err


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
            raise TryOnValidationError(
                f"Garment {garment.pk} is not offered for try-on.", code="InvalidGarment"
            )
        if garment.slot != slot:
            raise TryOnValidationError(
                f"A {garment.get_kind_display().lower()} cannot be sent as the {slot}.", code="InvalidGarment"
            )
    if top is not None and top.kind == Garment.Kind.ONE_PIECE and bottom is not None:
        raise TryOnValidationError("A one-piece is tried on alone, without a bottom.", code="InvalidGarment")
    return top, bottom


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
    refine: bool | None = None,
    gender: str = "",
    keep_own: bool = False,
    dispatch_now: bool = True,
    person_check: dict[str, Any] | None = None,
    webhook: WebhookEndpoint | None = None,
) -> TryOn:
    """Validate everything, store the inputs under random names and create a ``queued`` job.

    Garments come as ``Garment`` rows (``top_garment``/``bottom_garment``, or the active garments of
    ``product``) or as raw flat-lay files (``top_image``/``bottom_image``). After the transaction
    commits, the job is dispatched unless ``dispatch_now`` is false.

    The person photo goes through the person check (``TRYON["PERSON_CHECK"]``) once: a saved photo's
    stored verdict is reused, an uploaded one is checked here (or ``person_check`` is its known verdict,
    for a re-run); the verdict is stored on the job.

    ``webhook``: an endpoint that gets this job's events too (the one its API client named; checked by the caller).

    Raises:
        TryOnPersonRefused: the person check refused the photo in "refuse" mode (nothing stored or charged).
        TryOnValidationError: bad image or parameter (nothing stored, nothing sent).
        TryOnConfigurationError: the backend is not configured (for example, it has no API key).
    """
    resolution = tryon_settings.DEFAULT_RESOLUTION if resolution is None else resolution
    restore_face = tryon_settings.RESTORE_FACE if restore_face is None else restore_face
    if resolution not in TryOn.Resolution.values:
        raise TryOnValidationError("resolution must be -1, 1024 or 1280.", code="InvalidParameter")
    if not isinstance(restore_face, bool):
        raise TryOnValidationError("restore_face must be true or false.", code="InvalidParameter")
    refine_asked = refine is not None
    if refine is None:  # the site's default: only where it can hold (the refiner needs the gender and size)
        refine = (
            bool(tryon_settings.REFINE) and gender in GENDERS and resolution == -1 and restore_face is True
        )
    refine = bool(refine)
    if refine and gender not in GENDERS:
        raise _field_error("The second pass needs the person's gender: woman or man.", "gender")
    if refine and (resolution != -1 or not restore_face):
        raise _field_error("The second pass needs resolution -1 and restore_face.", "refine")
    images_given = top_image is not None or bottom_image is not None
    top_garment, bottom_garment = _pick_garments(
        None if images_given else product, top_garment, bottom_garment
    )
    if (top_garment is not None and top_image is not None) or (
        bottom_garment is not None and bottom_image is not None
    ):
        raise TryOnValidationError(
            "Give each slot either a garment or an image, not both.", code="InvalidGarment"
        )
    if person_photo is not None and person_image is not None:
        raise TryOnValidationError("Give person_image or person_photo, not both.", code="InvalidParameter")
    checked_person: CheckedImage | None = None
    if person_image is not None:
        checked_person = check_image(person_image, field="person_image")
        person_hash = _sha256(checked_person.content)
    elif (
        person_photo is not None
    ):  # checked when it was saved; the job references it instead of storing a copy
        person_hash = person_photo.content_hash
    else:
        raise TryOnValidationError("Give a person photo.", code="InvalidParameter")
    sources = {
        "top_image": top_image if top_image is not None else (top_garment and read_bytes(top_garment.image)),
        "bottom_image": bottom_image
        if bottom_image is not None
        else (bottom_garment and read_bytes(bottom_garment.image)),
    }
    checked_garments = {f: check_image(src, field=f) for f, src in sources.items() if src}
    if not checked_garments:
        raise TryOnValidationError(code="InvalidGarment")
    if (
        refine and "top_image" not in checked_garments
    ):  # the refiner takes a top (or one-piece), bottom optional
        if refine_asked:
            raise _field_error("The second pass needs a top or a one-piece.", "refine")
        refine = False
    entry = routing.first(garments=len(checked_garments))
    backend = entry.backend(model=model)
    backend.check_credentials()  # no key: refused now, before anything is stored or charged
    owner = Owner.of(user, owner_key)
    dedup_key = _dedup_key(
        owner,
        person_hash,
        checked_garments,
        backend,
        resolution,
        restore_face,
        refine,
        gender + ("+own" if keep_own else ""),
    )
    existing = _recent_duplicate(owner, dedup_key)
    if existing is not None:
        logger.info("try-on %s reused for an identical request", existing.public_id)
        if webhook is not None:
            webhooks.attach(existing, webhook)
        return existing
    if person_photo is not None:
        person_check = photo_check(person_photo)
    elif person_check is None and checked_person is not None:
        person_check = precheck.run(checked_person.content)
    precheck.enforce(person_check, field="person_photo" if person_photo is not None else "person_image")
    quotas.check(owner, backend.model)  # fail fast, before writing any file

    job = TryOn(
        **owner.fields(),
        person_photo=person_photo,
        consent_at=(person_photo.consent_at if person_photo is not None else timezone.now())
        if consent
        else None,
        person_check=person_check,
        dedup_key=dedup_key,
        product=product if product is not None else getattr(top_garment or bottom_garment, "product", None),
        top_garment=top_garment,
        bottom_garment=bottom_garment,
        route=entry.name,
        backend=backend.name,
        model_name=backend.model,
        resolution=resolution,
        restore_face=restore_face,
        refine=refine,
        gender=gender if refine else "",
        # only a top or only a bottom: the other half is the shopper's own (a one-piece covers both)
        keep_own=bool(
            keep_own
            and len(checked_garments) == 1
            and not (top_garment is not None and top_garment.kind == Garment.Kind.ONE_PIECE)
        ),
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
            if webhook is not None:
                webhooks.attach(job, webhook)
            if dispatch_now:
                transaction.on_commit(lambda: dispatch(job))
    except BaseException:
        storage = get_tryon_storage()
        for name in written:  # never leave a half-created job's files behind
            storage.delete(name)
        raise
    logger.info("try-on %s created (%s/%s)", job.public_id, job.backend, job.model_name)
    return job


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _dedup_key(
    owner: Owner,
    person_hash: str,
    garments: dict,
    backend: Any,
    resolution: int,
    restore: bool,
    refine: bool,
    gender: str,
) -> str:
    digest = hashlib.sha256()
    for part in (
        str(owner.user.pk if owner.user is not None else ""),
        owner.key,
        backend.name,
        backend.model,
        str(resolution),
        str(restore),
        person_hash,
        str(refine),
        gender,
    ):
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


# -- saved photos --------------------------------------------------------------------------------
def save_photo(
    *, image: bytes | IO[bytes], user: Any = None, owner_key: str = "", consent: bool = False
) -> PersonPhoto:
    """Keep a shopper's person photo for reuse; needs explicit consent (stored with its time).

    The same photo is kept once per owner (the existing one is returned, its consent renewed), and at
    most ``MAX_PHOTOS_PER_OWNER`` photos per owner (the oldest are deleted to make room). The person
    check runs here, once per photo (``TRYON["PERSON_CHECK"]``); its verdict is kept on the photo.

    Raises:
        TryOnPersonRefused: the check refused the photo in "refuse" mode (nothing stored).
        TryOnValidationError: no consent, or an image the provider would refuse.
    """
    if not consent:
        err = TryOnValidationError("Consent is required to keep your photo.", code="consent_required")
        err.field = "consent"
        raise err
    checked = check_image(image, field="image")
    owner = Owner.of(user, owner_key)
    content_hash = _sha256(checked.content)
    mine = owner.scope(PersonPhoto.objects.all()) if owner.is_shopper else PersonPhoto.objects.none()
    existing = mine.filter(content_hash=content_hash).first()
    if existing is not None:
        precheck.enforce(photo_check(existing, checked.content), field="image")
        PersonPhoto.objects.filter(pk=existing.pk).update(consent_at=timezone.now())
        existing.refresh_from_db()
        return existing
    person_check = precheck.run(checked.content)
    precheck.enforce(person_check, field="image")
    photo = PersonPhoto(
        **owner.fields(), content_hash=content_hash, consent_at=timezone.now(), person_check=person_check
    )
    photo.image.save(f"person.{checked.extension}", ContentFile(checked.content), save=False)
    try:
        photo.save()
    except BaseException:
        if photo.image.name:
            get_tryon_storage().delete(photo.image.name)
        raise
    cap = tryon_settings.MAX_PHOTOS_PER_OWNER
    if cap is not None and owner.is_shopper:
        for old in mine.exclude(pk=photo.pk).order_by("-created_at", "-pk")[max(0, cap - 1) :]:
            delete_photo(old)
    return photo


def photo_check(photo: PersonPhoto, content: bytes | None = None) -> dict[str, Any] | None:
    """The person check's verdict on a saved photo: the stored one, else checked now and stored (once).

    ``content`` is the photo's bytes when the caller has them. None when the check does not run
    (``PERSON_CHECK`` "off", even for a verdict stored before; no engine extra; an engine failure) or
    the photo's file is gone.
    """
    if precheck.mode() == "off":
        return None
    if photo.person_check is not None:
        return photo.person_check
    if content is None:
        try:
            content = read_bytes(photo.image)
        except (OSError, ValueError):  # deleted file: nothing to check
            return None
    verdict = precheck.run(content)
    if verdict is not None:
        PersonPhoto.objects.filter(pk=photo.pk).update(person_check=verdict)
        photo.person_check = verdict
    return verdict


def delete_photo(photo: PersonPhoto) -> None:
    """Delete a saved photo and its file. Try-ons made from it lose their person photo too (they
    referenced it); a job still waiting for the provider then fails rather than send a deleted photo."""
    names = [photo.image.name, *(photo.own_clothes or {}).values()]
    photo.delete()
    for name in filter(None, names):
        get_tryon_storage().delete(name)


def _save_file(field_file: Any, stem: str, checked: CheckedImage, written: list[str]) -> None:
    field_file.save(f"{stem}.{checked.extension}", ContentFile(checked.content), save=False)
    written.append(field_file.name)


# -- dispatch ---------------------------------------------------------------------------------------
def dispatch(job: TryOn) -> int:
    """Admit queued jobs of ``job``'s model now (the dispatcher decides whether a provider slot is free).

    Called after a create or a retry commits; never raises, since the tick admits whatever is left.
    """
    try:
        return admission.admit_new(admission.lane_of(job))
    except Exception:  # a locked or unreachable database here must not turn a created job into a 500
        logger.exception("admission after try-on %s failed; the tick will admit it", job.public_id)
        return 0


# -- retry, cancel, refresh ------------------------------------------------------------------------
def retry(job: TryOn, *, owner: Owner | None = None) -> bool:
    """Start a new attempt of a failed or canceled job; the old attempt is kept in ``history``.

    The attempt is paid: it goes through the quota gate, charged to ``owner`` (the shopper asking;
    none for the merchant's own retries, which only the site budget limits). Raises
    ``TryOnQuotaExceeded`` when over a limit. Returns False when the job cannot be retried.
    """
    owner = owner or Owner()
    if job.status not in ENDED_BADLY:
        return False
    if not job.person_file:
        raise TryOnValidationError("The person photo of this try-on was deleted.", code="InvalidParameter")
    entry = pipeline.history_entry(job)
    with transaction.atomic():
        quotas.gate(owner, job.model_name)
        done = TryOn.objects.transition(
            job.pk,
            ENDED_BADLY,
            Status.QUEUED,
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
            step_retries=0,
            resubmits=0,
            next_check_at=None,
            key_name="",
            submit_sent_at=None,
            stage=STAGE_TRYON,
            coarse_image="",
            # a job that failed in its second pass starts again from the try-on, on its route's model
            model_name=route(job.route).model if job.stage == STAGE_REFINE else job.model_name,
        )
        if done:
            if job.coarse_image.name:
                get_tryon_storage().delete(job.coarse_image.name)
            quotas.record(TryOn.objects.get(pk=job.pk), owner)
            transaction.on_commit(lambda: dispatch(job))
    job.refresh_from_db()
    return done


def cancel(job: TryOn) -> bool:
    """Cancel a job not yet running. Jobs the provider already started cannot be canceled (its rule)."""
    canceled = {"error_code": "Canceled", "error_message": "Canceled by request."}
    with transaction.atomic():
        if TryOn.objects.transition(job.pk, [Status.QUEUED], Status.CANCELED, **canceled):
            quotas.release(job)  # never sent: the attempt costs nothing and gives its slot back
            job.refresh_from_db()
            pipeline.send_after_commit(signals.tryon_canceled, job)
            return True
    if TryOn.objects.transition(job.pk, [Status.SUBMITTING], Status.CANCELED, **canceled):
        job.refresh_from_db()  # may have reached the provider: the attempt stays counted
        pipeline.send_after_commit(signals.tryon_canceled, job)
        dispatch(job)  # its slot is free
        return True
    job.refresh_from_db()
    if job.status == Status.SUBMITTED and job.remote_id and pipeline.backend_for(job).cancel(job.remote_id):
        done = TryOn.objects.transition(job.pk, IN_FLIGHT, Status.CANCELED, **canceled)
        job.refresh_from_db()
        if done:
            pipeline.send_after_commit(signals.tryon_canceled, job)
        dispatch(job)
        return done
    return False


def refresh(job: TryOn) -> TryOn:
    """Poll the provider now for a job it has (the admin's "refresh now"); the schedule goes on from there."""
    if job.status in IN_FLIGHT:
        ticket = _take_over(job)
        if ticket is not None:
            pipeline.advance(job.pk, ticket)
    job.refresh_from_db()
    return job


def _take_over(job: TryOn) -> int | None:
    """Make job's next step due now under a new ticket (older messages become no-ops); None if a worker holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if TryOn.objects.filter(free, pk=job.pk, ticket=job.ticket).update(
        ticket=F("ticket") + 1, next_check_at=now
    ):
        return job.ticket + 1
    return None


def rerun(job: TryOn, *, model: str) -> TryOn:
    """A new job with the same photo, garments and parameters on another model (e.g. ``aitryon-plus``).

    The owner's daily limit is not charged (the merchant asks for it); the site budget still applies.
    """

    def read(field_file: Any) -> bytes | None:
        return read_bytes(field_file) if field_file else None

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
        refine=job.refine,
        gender=job.gender,
        keep_own=job.keep_own,
        person_check=job.person_check if job.person_image else None,
    )


def refine_result(job: TryOn, *, gender: str) -> TryOn:
    """The second pass over a finished try-on's picture, after the fact (the admin's "refine" action).

    A new job owned by the same shopper starts at the refiner stage with copies of the picture and the
    garments; the merchant's attempt (only the site budget applies). If its second pass fails, its result
    is the original picture, as for a refine asked for up front.
    """
    if gender not in GENDERS:
        raise _field_error("The second pass needs the person's gender: woman or man.", "gender")
    if job.status != Status.SUCCEEDED or not job.result_image or job.refine or job.stage == STAGE_REFINE:
        raise TryOnValidationError(
            "Only the picture of a finished try-on that was not refined can be refined.",
            code="InvalidParameter",
        )
    if not job.person_file:
        raise TryOnValidationError("The person photo of this try-on was deleted.", code="InvalidParameter")
    refiner = route(job.route).backend().capabilities.refiner_model
    if not refiner:
        raise TryOnValidationError(f"The route {job.route!r} has no second pass.", code="InvalidParameter")
    new = TryOn(
        user=job.user,
        owner_key=job.owner_key,
        person_photo=job.person_photo if not job.person_image else None,
        consent_at=job.consent_at,
        person_check=job.person_check,
        product=job.product,
        top_garment=job.top_garment,
        bottom_garment=job.bottom_garment,
        route=job.route,
        backend=job.backend,
        model_name=refiner,
        resolution=-1,
        restore_face=True,
        refine=True,
        gender=gender,
        stage=STAGE_REFINE,
        keep_own=job.keep_own,
        history=[
            {
                "note": "refining the picture of an earlier try-on",
                "source": str(job.public_id),
                "at": timezone.now().isoformat(),
            }
        ],
    )
    copies = [
        ("person_image", "person", job.person_image),
        ("top_image", "top_image", job.top_image),
        ("bottom_image", "bottom_image", job.bottom_image),
        ("coarse_image", "coarse", job.result_image),
    ]
    written: list[str] = []
    try:
        for field, stem, source in copies:
            if source:
                _save_file(getattr(new, field), stem, check_image(read_bytes(source), field=field), written)
        with transaction.atomic():
            quotas.gate(Owner(), refiner)
            new.save()
            quotas.record(new, Owner())
            transaction.on_commit(lambda: dispatch(new))
    except BaseException:
        storage = get_tryon_storage()
        for name in written:
            storage.delete(name)
        raise
    logger.info("try-on %s: refining the picture of %s with %s", new.public_id, job.public_id, refiner)
    return new


def delete_images(job: TryOn) -> int:
    """Delete a job's own person photo, garment snapshots and result from storage, keeping the record.

    A referenced saved photo is the shopper's (deleted with it or by its own retention); the job lets go of it.
    """
    storage = get_tryon_storage()
    names = job.owned_files()
    for name in names:
        storage.delete(name)
    TryOn.objects.filter(pk=job.pk).update(
        **dict.fromkeys(TryOn.FILE_FIELDS, ""), person_photo=None, updated_at=timezone.now()
    )
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
        old = TryOn.objects.filter(status__in=TERMINAL, created_at__lt=now - timedelta(days=days))
        for job in old.exclude(**dict.fromkeys(TryOn.FILE_FIELDS, ""), person_photo__isnull=True).iterator():
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
        pipeline.cancel_remote_quietly(pipeline.backend_for(job), job.remote_id)
    names = job.owned_files()
    job.delete()
    storage = get_tryon_storage()
    for name in names:
        storage.delete(name)
    if job.status in ACTIVE:
        dispatch(job)  # its provider slot is free


def run_now(
    job: TryOn, *, sleep: Callable[[float], None] | None = None, max_wait: float | None = None
) -> TryOn:
    """Drive one job through submit and poll in this process (management commands, no worker needed).

    The job skips the dispatcher's queue (the merchant is checking a key); the provider's own 429s
    are still waited out.
    """
    sleep = sleep or time.sleep
    deadline = time.monotonic() + (max_wait or tryon_settings.POLL_DEADLINE + 60)
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == Status.QUEUED:
            wait = (job.next_check_at - timezone.now()).total_seconds() if job.next_check_at else 0.0
            if wait > 0:
                sleep(min(wait, max(0.0, deadline - time.monotonic())))
            TryOn.objects.transition(
                job.pk,
                [Status.QUEUED],
                Status.SUBMITTING,
                admitted_at=timezone.now(),
                next_check_at=timezone.now(),
            )
            continue
        if job.status not in ACTIVE:
            break
        next_at = pipeline.advance(job.pk, job.ticket, schedule_next=False)
        if next_at is not None:
            sleep(max(0.0, min((next_at - timezone.now()).total_seconds(), deadline - time.monotonic())))
    job.refresh_from_db()
    if not job.is_terminal:
        pipeline.fail(job.pk, TryOnError("Gave up waiting for the provider.", code="Timeout"))
        job.refresh_from_db()
    return job
