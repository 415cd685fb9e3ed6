"""The pipeline: the one way an admitted job moves forward, one step at a time.

``advance(pk, ticket)`` leases the job row, runs the step its status calls for (submit, reconcile an
unanswered submit, poll, fetch the result), writes what happens next and when onto the row, and
schedules it. Every move is a guarded update, so a duplicate, late or stale message does nothing;
a worker killed mid-step leaves a lease that expires, and the tick (:func:`tick`) resumes the job.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import random
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from . import admission, quotas, routing, signals, timing, webhooks
from .backends import route
from .backends.base import BaseTryOnBackend, RemoteState, TryOnInput
from .conf import tryon_settings
from .exceptions import (
    TryOnConfigurationError,
    TryOnError,
    TryOnProviderRejected,
    TryOnQuotaExceeded,
    TryOnRetryableError,
    TryOnValidationError,
)
from .models import (
    ACTIVE,
    IN_FLIGHT,
    STAGE_REFINE,
    STAGE_TRYON,
    UNFINISHED,
    Garment,
    PersonPhoto,
    Status,
    TryOn,
)
from .owners import Owner
from .scheduling import is_synchronous, schedule_admission, schedule_step
from .storage import (
    get_tryon_storage,
    person_upload_to,
    presigns_urls,
    public_signed_url,
    read_bytes,
    result_upload_to,
    snapshot_upload_to,
    storage_absolute_url,
)
from .validators import check_image

logger = logging.getLogger("django_tryon")

#: How long the provider keeps a temporary upload (48 h), minus a margin.
UPLOAD_REUSE = timedelta(hours=47)
#: Clock difference allowed between this site and the provider when matching an unanswered submit.
RECONCILE_SKEW = timedelta(seconds=10)


# -- the step ---------------------------------------------------------------------------------------
def advance(pk: int, ticket: int, *, schedule_next: bool = True) -> datetime | None:
    """Run the due step of job ``pk`` if ``ticket`` is still its current one. Returns when the next step is due.

    With ``schedule_next`` false (``run_now``) the caller runs the next step itself.
    """
    job = _claim(pk, ticket)
    if job is None:
        return None  # a stale or duplicate message, a job someone else is working on, or a finished one
    return run_claimed(job, schedule_next=schedule_next)


def run_claimed(job: TryOn, *, schedule_next: bool = True) -> datetime | None:
    """Run the due step of a job whose lease this process holds (from :func:`_claim`, or from admission)."""
    pk = job.pk
    next_at: datetime | None = None
    try:
        backend = backend_for(job)
        next_at = _submit(job, backend) if job.status == Status.SUBMITTING else _check(job, backend)
    except TryOnRetryableError as err:
        next_at = _retry_later(job, err)
    except (TryOnError, TryOnConfigurationError) as err:
        if not _fail_over(job, err):
            fail(pk, err)
    except SoftTimeLimitExceeded:  # a synchronous call outlived its step's time limit (SYNC_TIME_MARGIN)
        next_at = _retry_later(
            job, TryOnRetryableError("The provider did not answer in time.", code="Timeout")
        )
    except Exception as err:
        logger.exception("step of try-on %s crashed", pk)
        fail(
            pk, TryOnError(f"Unexpected error while processing: {type(err).__name__}", code="ProcessingError")
        )
        raise
    finally:
        _release(job, next_at, schedule_next)
    return next_at


def _claim(pk: int, ticket: int) -> TryOn | None:
    now = timezone.now()
    lease = now + timedelta(seconds=float(tryon_settings.LEASE_SECONDS))
    claimed = (
        TryOn.objects.filter(pk=pk, ticket=ticket, status__in=ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease)
    )
    return TryOn.objects.filter(pk=pk).first() if claimed else None


def _release(job: TryOn, next_at: datetime | None, schedule_next: bool) -> None:
    """Let go of the lease; if the job is still active, write and schedule its next step."""
    still_active = TryOn.objects.filter(pk=job.pk, status__in=ACTIVE).exists()
    fields: dict[str, Any] = {"lease_until": None, "ticket": F("ticket") + 1}
    if still_active:  # a queued job keeps its "not before"; a finished one needs nothing
        fields["next_check_at"] = next_at
    # Matching the ticket: if admission already took the job again (a resubmit), this changes nothing.
    released = TryOn.objects.filter(pk=job.pk, ticket=job.ticket).update(**fields)
    if released and still_active and next_at is not None and schedule_next:
        schedule_step(job.pk, job.ticket + 1, next_at, route=job.route)


def backend_for(job: TryOn) -> BaseTryOnBackend:
    """The configured backend, on the model and pool key this job was admitted with."""
    return route(job.route).backend(model=job.model_name or None, key=job.key_name or None)


def _fail_over(job: TryOn, err: TryOnError | TryOnConfigurationError) -> bool:
    """The provider refused the route itself (model retired or not purchased, no credits, key refused):
    mark it, and move a job not yet with that provider to the next usable route. False: nowhere to go."""
    code = getattr(err, "code", "")
    if not routing.is_refusal(code):
        return False
    name = route(job.route).name
    routing.refuse(name, code, getattr(err, "message", str(err)))
    nxt = routing.choose(after=name, garments=routing.garments_of(job))
    job.refresh_from_db()
    if nxt is None or job.status not in (Status.QUEUED, Status.SUBMITTING):
        return False
    if not admission.move_to(job, nxt, reason=code):
        return False
    logger.warning("try-on %s: route %s refused (%s); moved to %s", job.public_id, name, code, nxt.name)
    admission.admit((nxt.name, nxt.model))
    return True


def _retry_later(job: TryOn, err: TryOnRetryableError) -> datetime | None:
    """A transient error in a step: try the same step again after a back-off, or give up."""
    routing.outage(route(job.route).name)
    retries = job.step_retries + 1
    delay = retry_delay(retries - 1, err)
    if delay is None:
        fail(job.pk, err)
        return None
    TryOn.objects.filter(pk=job.pk).update(step_retries=retries)
    logger.info("try-on %s: %s, step retried in %.1f s", job.public_id, err.code, delay)
    return timezone.now() + timedelta(seconds=delay)


def retry_delay(retries: int, error: TryOnRetryableError) -> float | None:
    """Seconds to wait before retry number ``retries + 1`` (exponential, full jitter), or None to give up."""
    if retries >= tryon_settings.MAX_RETRIES:
        return None
    ceiling = min(float(tryon_settings.RETRY_BACKOFF_MAX), 2.0 ** (retries + 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if error.retry_after:
        delay = max(delay, float(error.retry_after))
    return delay


# -- submit -----------------------------------------------------------------------------------------
def _submit(job: TryOn, backend: BaseTryOnBackend) -> datetime | None:
    if job.submit_sent_at is not None:  # an earlier submit got no answer: did the provider take it?
        found = _reconcile(job, backend)
        if found is not None:
            return _accepted(job, backend, found, "")
        TryOn.objects.filter(pk=job.pk).update(submit_sent_at=None)
    if not job.person_file:
        raise TryOnValidationError(
            "The person photo was deleted before the try-on was sent.", code="InvalidParameter"
        )
    if (
        job.keep_own
        and job.stage == STAGE_TRYON
        and not (job.top_image and job.bottom_image)
        and not any(str(entry.get("note", "")).startswith("own clothes") for entry in job.history)
    ):  # once per job: a resubmit sends what the first look found (or did not)
        _add_own_clothes(job, backend)
    urls = {name: _input(job, name, field_file, backend) for name, field_file in _inputs(job)}
    refining = job.stage == STAGE_REFINE
    request = TryOnInput(
        person_image_url=urls["person"],
        top_garment_url=urls.get("top"),
        bottom_garment_url=urls.get("bottom"),
        resolution=job.resolution,
        restore_face=job.restore_face,
        top_is_one_piece=bool(job.top_garment is not None and job.top_garment.kind == Garment.Kind.ONE_PIECE),
        coarse_image_url=urls.get("coarse") if refining else None,
        gender=job.gender if refining else "",
    )
    now = timezone.now()
    lease = now + timedelta(
        seconds=max(float(tryon_settings.LEASE_SECONDS), backend.capabilities.longest_request + 10)
    )
    # Written before the request leaves, and only while this worker still holds the job: a crash from
    # here on leaves a mark that makes the next attempt ask the provider before sending again.
    if not TryOn.objects.filter(pk=job.pk, ticket=job.ticket, status=Status.SUBMITTING).update(
        submit_sent_at=now, lease_until=lease
    ):
        return None
    try:
        result = backend.submit(request)
    except TryOnRetryableError as err:
        if err.accepted_maybe:
            raise  # the mark stays: the retry reconciles first
        TryOn.objects.filter(pk=job.pk).update(submit_sent_at=None)
        return _hand_back(job, err)
    except (TryOnError, TryOnConfigurationError):
        TryOn.objects.filter(pk=job.pk).update(submit_sent_at=None)
        raise
    accepted_at = _accepted(job, backend, result.remote_id, result.request_id)
    if (
        result.finished is not None and accepted_at is not None
    ):  # a synchronous backend: the answer is the result
        job.refresh_from_db()
        return _handle(job, backend, result.finished, polled=False)
    return accepted_at


def _accepted(job: TryOn, backend: BaseTryOnBackend, remote_id: str, request_id: str) -> datetime | None:
    now = timezone.now()
    moved = TryOn.objects.transition(
        job.pk,
        [Status.SUBMITTING],
        Status.SUBMITTED,
        remote_id=remote_id,
        request_id=request_id,
        submitted_at=now,
        submit_sent_at=None,
        step_retries=0,
    )
    if not moved:  # canceled while we were submitting: do not let the provider work (and bill) for nothing
        cancel_remote_quietly(backend, remote_id)
        return None
    job.refresh_from_db()
    routing.success(route(job.route).name)
    send_after_commit(signals.tryon_submitted, job)
    logger.info("try-on %s submitted as %s", job.public_id, remote_id)
    return now + timedelta(seconds=timing.first_check(job.model_name, backend.capabilities.typical_duration))


def _hand_back(job: TryOn, err: TryOnRetryableError) -> datetime | None:
    """The provider proved it did not take the task (429, 5xx): back to the queue, the slot freed.

    A 429 (the provider is full, maybe because another app shares the key) costs no retry; other
    errors count against ``MAX_RETRIES``.
    """
    throttled = err.status_code == 429 or err.code.startswith("Throttling")
    name = route(job.route).name
    if not throttled and routing.outage(name):  # the breaker just opened: the next route takes the job
        nxt = routing.choose(after=name, garments=routing.garments_of(job))
        if nxt is not None and admission.move_to(job, nxt, reason="BreakerOpen"):
            admission.admit((nxt.name, nxt.model))
            return None
    retries = job.step_retries + (0 if throttled else 1)
    delay = retry_delay(0 if throttled else retries - 1, err)
    if delay is None:
        fail(job.pk, err)
        return None
    not_before = timezone.now() + timedelta(seconds=delay)
    if TryOn.objects.transition(
        job.pk,
        [Status.SUBMITTING],
        Status.QUEUED,
        next_check_at=not_before,
        step_retries=retries,
        key_name="",
    ):
        logger.info(
            "try-on %s handed back to the queue (%s), admitted again in %.1f s",
            job.public_id,
            err.code,
            delay,
        )
        schedule_admission(admission.lane_of(job), not_before)
        admission.admit(admission.lane_of(job))
    return None


def _reconcile(job: TryOn, backend: BaseTryOnBackend) -> str | None:
    """The remote id of the task an unanswered submit created, from the provider's task list; None if none.

    A task is adopted only when the match is unambiguous: exactly one task of this model that no job
    knows, created while this job's submit was out, and no other job of ours waiting for the same
    answer in that time. Otherwise nothing is adopted (a resubmit may cost twice; a wrong adoption
    would show one shopper another's picture).
    """
    sent = job.submit_sent_at
    if sent is None or not backend.capabilities.supports_task_list:
        return None
    since, until = (
        sent - RECONCILE_SKEW,
        sent + timedelta(seconds=float(tryon_settings.LEASE_SECONDS)) + RECONCILE_SKEW,
    )
    tasks = [t for t in backend.list_tasks(since=since, until=until) if t.model in ("", job.model_name)]
    ids = {t.remote_id for t in tasks}
    known: set[str | None] = set(TryOn.objects.filter(remote_id__in=ids).values_list("remote_id", flat=True))
    known |= {
        entry.get("remote_id")
        for other in TryOn.objects.filter(history__isnull=False, created_at__gte=since - timedelta(days=1))
        .exclude(history=[])
        .values_list("history", flat=True)
        for entry in other
        if isinstance(entry, dict)
    }
    strangers = [t for t in tasks if t.remote_id not in known]
    rivals = TryOn.objects.filter(
        status=Status.SUBMITTING,
        model_name=job.model_name,
        submit_sent_at__gte=since,
        submit_sent_at__lte=until,
    ).exclude(pk=job.pk)
    if len(strangers) == 1 and not rivals.exists():
        logger.warning(
            "try-on %s: the unanswered submit created %s; adopted", job.public_id, strangers[0].remote_id
        )
        return strangers[0].remote_id
    if strangers:
        logger.warning(
            "try-on %s: %d unknown provider tasks around an unanswered submit; none adopted",
            job.public_id,
            len(strangers),
        )
    return None


def _input(job: TryOn, name: str, field_file: Any, backend: BaseTryOnBackend) -> str:
    """A URL for one input; the provider's own upload is made once per job and key, and reused."""
    saved = (job.uploads or {}).get(name)
    if (
        saved
        and saved.get("key") == job.key_name
        and saved.get("model") == job.model_name
        and timezone.now() - datetime.fromisoformat(saved["at"]) < UPLOAD_REUSE
    ):
        return saved["url"]
    url = input_url(field_file, backend)
    if url.startswith("oss://"):
        kept = {k: v for k, v in (job.uploads or {}).items() if k != "pending"}
        uploads = {
            **kept,
            name: {
                "url": url,
                "key": job.key_name,
                "model": job.model_name,
                "at": timezone.now().isoformat(),
            },
        }
        TryOn.objects.filter(pk=job.pk).update(uploads=uploads)
        job.uploads = uploads
    return url


def _add_own_clothes(job: TryOn, backend: BaseTryOnBackend) -> None:
    """Keep my own clothes: cut what the person wears on the other half out of their photo and send it in
    the empty slot (otherwise the model invents something). Once per saved photo; nothing found: as before."""
    kind, slot = ("lower", "bottom_image") if job.top_image else ("upper", "top_image")
    if (
        backend.capabilities.max_garments < 2
    ):  # e.g. FASHN: one garment per request, the other half stays as is
        TryOn.objects.filter(pk=job.pk).update(
            history=[
                *job.history,
                {
                    "note": "own clothes not sent: this route takes one garment",
                    "kind": kind,
                    "at": timezone.now().isoformat(),
                },
            ]
        )
        job.refresh_from_db()
        return
    photo = job.person_photo if not job.person_image else None
    crop = _cached_own_clothes(photo, kind)
    if crop is None:
        crop = _parse_own_clothes(job, kind)
        if photo is not None:
            _cache_own_clothes(photo, kind, crop)
    note = "own clothes kept" if crop else "own clothes not found: the model completes the outfit"
    if crop:
        try:
            checked = check_image(crop, field=slot)
        except TryOnValidationError:
            checked, note = None, "own clothes too small to send: the model completes the outfit"
        if checked is not None:
            name = get_tryon_storage().save(
                snapshot_upload_to(job, f"own.{checked.extension}"), ContentFile(checked.content)
            )
            TryOn.objects.filter(pk=job.pk).update(**{slot: name})
    TryOn.objects.filter(pk=job.pk).update(
        history=[*job.history, {"note": note, "kind": kind, "at": timezone.now().isoformat()}]
    )
    job.refresh_from_db()


def _parse_own_clothes(job: TryOn, kind: str) -> bytes | None:
    """The provider's parsing model where the route has one, else the engine's segmentation."""
    person = read_bytes(job.person_file)
    parser_model = backend_for(job).capabilities.parser_model
    if parser_model:
        try:
            parser = route(job.route).backend(model=parser_model, key=job.key_name or None)
            return parser.parse_clothes(input_url(job.person_file, parser), kind)
        except (TryOnError, TryOnConfigurationError) as err:  # retired, refused, down: the engine can do it
            logger.info(
                "try-on %s: the parsing model failed (%s); the engine parses instead",
                job.public_id,
                getattr(err, "code", err),
            )
    try:
        from .engine.parsing import extract_clothes
    except ImportError:  # the engine extra is not installed
        return None
    found = extract_clothes(person, kind)
    return found[1] if found else None


def _cached_own_clothes(photo: PersonPhoto | None, kind: str) -> bytes | None:
    name = (photo.own_clothes or {}).get(kind) if photo is not None else None
    if not name:
        return None
    try:
        return read_bytes(name)
    except OSError:
        return None


def _cache_own_clothes(photo: PersonPhoto, kind: str, crop: bytes | None) -> None:
    if not crop:
        return
    name = get_tryon_storage().save(person_upload_to(photo, f"own-{kind}.png"), ContentFile(crop))
    PersonPhoto.objects.filter(pk=photo.pk).update(own_clothes={**(photo.own_clothes or {}), kind: name})


def _inputs(job: TryOn) -> list[tuple[str, Any]]:
    files = [("person", job.person_file), ("top", job.top_image), ("bottom", job.bottom_image)]
    if job.stage == STAGE_REFINE:
        files.append(("coarse", job.coarse_image))
    return [(name, f) for name, f in files if f]


def prepare(pk: int) -> int:
    """While a job waits in the queue, make the provider uploads its submit will need (once per job).

    Admission prefers the key they were made on, so the submit itself is one request and a free slot
    is taken at once. Nothing to do with signed or presigned input URLs. Returns the uploads made.
    """
    job = TryOn.objects.filter(pk=pk, status=Status.QUEUED).first()
    if job is None or set(job.uploads or {}) - {"pending"}:
        return 0
    job.key_name = route(job.route).keys[0].name  # made for the first key (the row keeps "" until admission)
    backend = backend_for(job)
    for name, field_file in _inputs(job):
        try:
            _input(job, name, field_file, backend)  # signed and storage URLs cost nothing and are not kept
        except (TryOnError, TryOnConfigurationError) as err:  # the submit will try (and report) again
            logger.info("try-on %s: preparing the %s input failed: %s", job.public_id, name, err)
            break
    return len(set(job.uploads or {}) - {"pending"})


def _strategy(backend: BaseTryOnBackend) -> str:
    strategy = tryon_settings.INPUT_URLS
    return "upload" if strategy == "auto" and backend.capabilities.prefers_upload else strategy


def input_url(field_file: Any, backend: BaseTryOnBackend) -> str:
    """A URL the provider can download a stored file from, per ``TRYON["INPUT_URLS"]``.

    ``auto``: the storage's URL when the storage presigns its URLs (``storage.presigns_urls``: django-storages
    S3, Google Cloud, Azure), else a signed, expiring URL of this app under ``PUBLIC_BASE_URL``, else the
    provider's temporary upload. In-process backends (``prefers_upload``) always get the bytes through
    their upload.
    """
    name = field_file.name
    strategy = _strategy(backend)
    if strategy == "storage" or (strategy == "auto" and presigns_urls(get_tryon_storage())):
        url = storage_absolute_url(name)
        if url:
            return url
        if strategy == "storage":
            raise TryOnConfigurationError(
                "TRYON['INPUT_URLS'] = 'storage' but the storage gives no absolute URL for its files."
            )
    if strategy in ("auto", "signed") and tryon_settings.PUBLIC_BASE_URL:
        return public_signed_url(field_file)
    if strategy in ("auto", "upload") and backend.capabilities.supports_upload:
        content = read_bytes(name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return backend.upload(content, name.rsplit("/", 1)[-1], content_type)
    raise TryOnConfigurationError(
        "The provider cannot reach the input images: set TRYON['PUBLIC_BASE_URL'] to this site's public URL, "
        "or use a storage with presigned URLs (django-storages S3, Google Cloud or Azure)."
    )


# -- poll and result --------------------------------------------------------------------------------
def _check(job: TryOn, backend: BaseTryOnBackend) -> datetime | None:
    """Ask the provider about a task; store the result, hand back a transient failure, or wait more."""
    if _past_deadline(job):
        cancel_remote_quietly(backend, job.remote_id)
        fail(job.pk, TryOnError(f"No result within {tryon_settings.POLL_DEADLINE} s.", code="Timeout"))
        return None
    return _handle(job, backend, backend.poll(job.remote_id), polled=True)


def _handle(job: TryOn, backend: BaseTryOnBackend, state: Any, *, polled: bool) -> datetime | None:
    """Act on the provider's state of the job's task (from a poll, or from a synchronous submit)."""
    ended = state.state in (
        RemoteState.SUCCEEDED,
        RemoteState.FAILED,
        RemoteState.CANCELED,
        RemoteState.UNKNOWN,
    )
    TryOn.objects.filter(pk=job.pk).update(
        poll_count=F("poll_count") + (1 if polled else 0),
        step_retries=0,
        remote_submitted_at=state.submitted_at or job.remote_submitted_at,
        remote_scheduled_at=state.scheduled_at or job.remote_scheduled_at,
        # the provider's slot is free from here on: admission counts only jobs without an end time
        remote_ended_at=state.ended_at or job.remote_ended_at or (timezone.now() if ended else None),
    )
    if ended and job.remote_ended_at is None:
        _take_the_freed_slot(admission.lane_of(job))
    if state.state is RemoteState.SUCCEEDED:
        store_result(job, backend, state.result_url or "", state.image_count)
        return None
    if state.state is RemoteState.FAILED and _resubmit_transient(job, backend, state):
        return None
    if state.state in (RemoteState.FAILED, RemoteState.UNKNOWN):
        fail(
            job.pk,
            TryOnProviderRejected(state.error_message, code=state.error_code or "ProviderError"),
            raw=state.raw,
        )
        return None
    if state.state is RemoteState.CANCELED:
        if TryOn.objects.transition(
            job.pk,
            IN_FLIGHT,
            Status.CANCELED,
            error_code="Canceled",
            error_message="Canceled at the provider.",
        ):
            logger.info("try-on %s canceled at the provider", job.public_id)
            send_after_commit(signals.tryon_canceled, TryOn.objects.get(pk=job.pk))
        return None
    if state.state is RemoteState.RUNNING:
        TryOn.objects.transition(job.pk, [Status.SUBMITTED], Status.RUNNING)
    elapsed = (timezone.now() - (job.submitted_at or job.created_at)).total_seconds()
    wait = timing.next_check(job.model_name, backend.capabilities.typical_duration, elapsed)
    return timezone.now() + timedelta(seconds=min(wait, max(0.01, _seconds_to_deadline(job) + 0.5)))


def _take_the_freed_slot(lane: admission.Lane) -> None:
    """The provider ended a task: admit the next queued job and submit it from here, before this job's
    result is fetched (slot time is what limits throughput; the download can wait a moment)."""
    if is_synchronous(lane[0]):  # its submit is a long call of its own: through the broker, on SYNC_QUEUE
        admission.admit(lane)
        return
    first = admission.admit_one_here(lane)
    if first is not None:
        run_claimed(first)
    admission.prepare_next(lane)


def _resubmit_transient(job: TryOn, backend: BaseTryOnBackend, state: Any) -> bool:
    """A task that failed for a passing reason on the provider's side goes back to the queue (once, by default)."""
    if job.resubmits >= int(tryon_settings.TRANSIENT_RESUBMITS) or not backend.is_transient_failure(
        state.error_code
    ):
        return False
    entry = history_entry(
        job,
        status="failed",
        error_code=state.error_code,
        error_message=state.error_message,
        note="resubmitted: transient provider failure",
    )
    moved = TryOn.objects.transition(
        job.pk,
        IN_FLIGHT,
        Status.QUEUED,
        history=[*job.history, entry],
        resubmits=F("resubmits") + 1,
        remote_id="",
        request_id="",
        remote_submitted_at=None,
        remote_scheduled_at=None,
        remote_ended_at=None,
        submitted_at=None,
        next_check_at=None,
        key_name="",
    )
    if moved:
        logger.warning(
            "try-on %s: provider task %s failed with %s; submitted again",
            job.public_id,
            job.remote_id,
            state.error_code,
        )
        admission.admit(admission.lane_of(job))
    return moved


def history_entry(job: TryOn, **fields: Any) -> dict[str, Any]:
    """The ``history`` record of a job's current attempt (kept when it is retried or resubmitted)."""
    entry = {
        "attempt": job.attempts,
        "remote_id": job.remote_id,
        "request_id": job.request_id,
        "status": job.status,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    entry.update(fields)
    entry.setdefault("at", timezone.now().isoformat())
    return entry


def _past_deadline(job: TryOn) -> bool:
    return _seconds_to_deadline(job) < 0


def _seconds_to_deadline(job: TryOn) -> float:
    started = job.submitted_at or job.created_at
    return (started + timedelta(seconds=tryon_settings.POLL_DEADLINE) - timezone.now()).total_seconds()


def store_result(job: TryOn, backend: BaseTryOnBackend, url: str, image_count: int) -> None:
    """Download the provider's result (its link dies in 24 h) into our storage, then mark succeeded."""
    try:
        content = backend.download(url)
        extension = _result_extension(content)
    except TryOnRetryableError:
        raise
    except TryOnError as err:
        fail(job.pk, err)
        return
    storage = get_tryon_storage()
    stored = storage.save(result_upload_to(job, f"result.{extension}"), ContentFile(content))
    if job.stage == STAGE_TRYON and job.refine and backend.capabilities.refiner_model:
        _start_refine(job, backend, stored)
        return
    done = TryOn.objects.transition(
        job.pk,
        IN_FLIGHT,
        Status.SUCCEEDED,
        result_image=stored,
        image_count=image_count or 1,
        error_code="",
        error_message="",
    )
    if not done:  # canceled, failed or deleted meanwhile: keep no orphan file
        storage.delete(stored)
        return
    job.refresh_from_db()
    send_after_commit(signals.tryon_succeeded, job)
    logger.info("try-on %s succeeded", job.public_id)


def _start_refine(job: TryOn, backend: BaseTryOnBackend, coarse: str) -> None:
    """The try-on's picture is in: queue the second pass (a paid attempt of the merchant's: only the site
    budget applies). Without budget, the first picture is the result."""
    refiner = backend.capabilities.refiner_model
    entry = history_entry(job, status="succeeded", note="first pass; refining")
    try:
        with transaction.atomic():
            quotas.gate(Owner(), refiner)
            moved = TryOn.objects.transition(
                job.pk,
                IN_FLIGHT,
                Status.QUEUED,
                stage=STAGE_REFINE,
                model_name=refiner,
                coarse_image=coarse,
                history=[*job.history, entry],
                remote_id="",
                request_id="",
                remote_submitted_at=None,
                remote_scheduled_at=None,
                remote_ended_at=None,
                submitted_at=None,
                next_check_at=None,
                key_name="",
            )
            if moved:
                job.refresh_from_db()
                quotas.record(job, Owner())
    except TryOnQuotaExceeded as err:
        TryOn.objects.filter(pk=job.pk).update(coarse_image=coarse)
        _finish_with_coarse(job.pk, err.code, "The second pass was skipped: the site's budget is used up.")
        return
    if not moved:
        get_tryon_storage().delete(coarse)
        return
    logger.info("try-on %s: first pass stored, refining with %s", job.public_id, refiner)
    admission.admit(admission.lane_of(job))


def _finish_with_coarse(pk: int, code: str, message: str) -> bool:
    """The second pass failed or was skipped: the first pass's picture is the result (noted in history)."""
    job = TryOn.objects.get(pk=pk)
    entry = history_entry(
        job, status="failed", error_code=code, error_message=message, note="second pass failed"
    )
    done = TryOn.objects.transition(
        pk,
        UNFINISHED,
        Status.SUCCEEDED,
        result_image=job.coarse_image.name,
        coarse_image="",
        image_count=1,
        error_code="",
        error_message="",
        history=[*job.history, entry],
        submit_sent_at=None,
        lease_until=None,
    )
    if done:
        job.refresh_from_db()
        logger.warning(
            "try-on %s: second pass failed (%s); the first picture is the result", job.public_id, code
        )
        send_after_commit(signals.tryon_succeeded, job)
    return bool(done)


def _result_extension(content: bytes) -> str:
    """The extension for a downloaded result, after proving it is an image."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = image.format
    except (UnidentifiedImageError, OSError) as err:
        raise TryOnProviderRejected(
            "The provider's result is not an image.", code="ResultUnavailable"
        ) from err
    return {"PNG": "png", "BMP": "bmp"}.get(fmt or "", "jpg")


# -- failure, and the tick --------------------------------------------------------------------------
def fail(
    pk: int, error: TryOnError | TryOnConfigurationError, *, sources: Any = UNFINISHED, raw: Any = None
) -> bool:
    """Mark a job failed with a stable code and a message; send ``tryon_failed`` after commit.

    A job that held a provider slot gives it up, and the next queued job is admitted.
    """
    code = getattr(error, "code", "ConfigurationError")
    message = getattr(error, "message", str(error))
    provider_error: dict[str, Any] = {"code": code, "message": message}
    status_code = getattr(error, "status_code", None)
    if status_code is not None:
        provider_error["status"] = status_code
    request_id = getattr(error, "request_id", "")
    if request_id:
        provider_error["request_id"] = request_id
    if isinstance(raw, dict):
        provider_error["output"] = raw.get("output")
    before = TryOn.objects.filter(pk=pk).first()
    if (
        before is not None
        and before.stage == STAGE_REFINE
        and before.coarse_image
        and before.status in UNFINISHED
    ):
        return _finish_with_coarse(pk, code, message)  # the try-on itself worked: keep its picture
    done = TryOn.objects.transition(
        pk,
        sources,
        Status.FAILED,
        error_code=code[:64],
        error_message=message,
        provider_error=provider_error,
        submit_sent_at=None,
        lease_until=None,
    )
    if done:
        job = TryOn.objects.get(pk=pk)
        logger.warning("try-on %s failed: %s", job.public_id, code)
        send_after_commit(signals.tryon_failed, job, code=code, message=message)
        if before is not None and before.status in ACTIVE:
            admission.admit(admission.lane_of(before))
    return done


def tick(*, now: datetime | None = None) -> dict[str, int]:
    """The safety net, run every few seconds (Celery beat, or ``manage.py tryon_tick``). Idempotent.

    Admits what a lost message left queued, resumes active jobs whose step is overdue (its message
    was lost with a broker or a worker killed mid-step: the lease has expired), and fails jobs that
    waited too long in the queue. Cheap: indexed queries, nothing for a healthy pipeline to do.
    """
    now = now or timezone.now()
    counts = {"admitted": admission.admit(now=now), "resumed": 0, "expired": 0}
    late = now - timedelta(seconds=float(tryon_settings.TICK_GRACE))
    overdue = (
        TryOn.objects.filter(status__in=ACTIVE)
        .filter(Q(next_check_at__lt=late) | Q(next_check_at__isnull=True))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", "ticket", "route")[:1000]
    )
    for pk, ticket, route_name in overdue:
        if (
            TryOn.objects.filter(pk=pk, ticket=ticket)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(ticket=F("ticket") + 1, next_check_at=now, lease_until=None)
        ):
            schedule_step(pk, ticket + 1, now, route=route_name)
            counts["resumed"] += 1
    deadline = now - timedelta(seconds=float(tryon_settings.QUEUE_DEADLINE))
    for pk in TryOn.objects.filter(status=Status.QUEUED, created_at__lt=deadline).values_list(
        "pk", flat=True
    )[:1000]:
        counts["expired"] += fail(
            pk, TryOnError("No provider slot came free in time.", code="Timeout"), sources=[Status.QUEUED]
        )
    counts["webhooks"] = webhooks.tick(now=now)
    if counts["resumed"] or counts["expired"] or counts["webhooks"]:
        logger.info("tick: %s", counts)
    return counts


# -- helpers ----------------------------------------------------------------------------------------
def cancel_remote_quietly(backend: BaseTryOnBackend, remote_id: str) -> None:
    try:
        backend.cancel(remote_id)
    except TryOnError as err:
        logger.info("could not cancel provider task %s: %s", remote_id, err.code)


def send_after_commit(signal: Any, job: TryOn, **kwargs: Any) -> None:
    def send() -> None:
        for receiver, response in signal.send_robust(sender=TryOn, tryon=job, **kwargs):
            if isinstance(response, Exception):
                logger.error("receiver %r of %s raised %r", receiver, signal, response, exc_info=response)

    transaction.on_commit(send)
