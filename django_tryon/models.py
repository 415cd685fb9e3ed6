"""Models: product garments and try-on jobs."""

from __future__ import annotations

import uuid
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models
from django.utils.translation import gettext_lazy as _

from .exceptions import TryOnConfigurationError
from .querysets import TryOnQuerySet
from .storage import (
    garment_upload_to,
    get_tryon_storage,
    person_upload_to,
    result_upload_to,
    snapshot_upload_to,
)
from .validators import check_image, validate_tryon_image

PRODUCT_MODEL_HINT = (
    "Set it to your product model as 'app_label.ModelName', e.g. TRYON_PRODUCT_MODEL = 'shop.Product', "
    "before the first migrate."
)


def get_product_model_string() -> str:
    """The ``app_label.ModelName`` of the shop's product model (``settings.TRYON_PRODUCT_MODEL``).

    Read when the models load (the foreign keys need it), so a missing or malformed value stops
    ``django.setup()`` with this message rather than a ``KeyError`` deep in the app registry.
    """
    value = getattr(settings, "TRYON_PRODUCT_MODEL", None)
    if not value:
        raise TryOnConfigurationError(f"TRYON_PRODUCT_MODEL is not set. {PRODUCT_MODEL_HINT}")
    if not isinstance(value, str) or value.count(".") != 1 or not all(value.split(".")):
        raise TryOnConfigurationError(
            f"TRYON_PRODUCT_MODEL = {value!r} is not 'app_label.ModelName'. {PRODUCT_MODEL_HINT}"
        )
    return value


def get_product_model() -> type[models.Model]:
    """The shop's product model class (``TryOnConfigurationError`` when it is not an installed model)."""
    value = get_product_model_string()
    try:
        return apps.get_model(value, require_ready=False)
    except (ValueError, LookupError) as err:
        raise TryOnConfigurationError(
            f"TRYON_PRODUCT_MODEL = {value!r} is not an installed model. Use the 'app_label.ModelName' of a model "
            "of an app in INSTALLED_APPS."
        ) from err


class Garment(models.Model):
    """A flat-lay photo of a product's garment, sent to the provider as the top or bottom."""

    class Kind(models.TextChoices):
        TOP = "top", _("Top")
        BOTTOM = "bottom", _("Bottom")
        ONE_PIECE = "one_piece", _("One-piece (dress, jumpsuit)")

    product = models.ForeignKey(
        get_product_model_string(),
        on_delete=models.CASCADE,
        related_name="tryon_garments",
        verbose_name=_("product"),
        help_text=_("The product this garment belongs to."),
    )
    image = models.FileField(
        _("flat-lay image"),
        upload_to=garment_upload_to,
        storage=get_tryon_storage,
        validators=[validate_tryon_image],
        help_text=_(
            "One garment, flat, on a clean background, filling the frame. JPEG/PNG/BMP/WebP, 5 KB–5 MB."
        ),
    )
    kind = models.CharField(
        _("kind"),
        max_length=10,
        choices=Kind.choices,
        default=Kind.TOP,
        help_text=_("A one-piece goes to the provider's top slot with no bottom."),
    )
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Offered for try-on."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("garment")
        verbose_name_plural = _("garments")
        ordering = ("product", "kind", "pk")
        indexes = (models.Index(fields=("product", "is_active"), name="tryon_garment_product_idx"),)

    def __str__(self) -> str:
        return f"{self.product} — {self.get_kind_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Validate a newly assigned image against the provider's rules and store the normalized bytes."""
        if self.image and not getattr(self.image, "_committed", True):
            checked = check_image(self.image.file, field="image")
            self.image.save(f"garment.{checked.extension}", ContentFile(checked.content), save=False)
        super().save(*args, **kwargs)

    @property
    def slot(self) -> str:
        """The provider slot: "top" (tops and one-pieces) or "bottom"."""
        return "bottom" if self.kind == self.Kind.BOTTOM else "top"


class PersonPhoto(models.Model):
    """A shopper's saved full-body photo, reusable across products. Personal data: owner-only."""

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tryon_photos",
        verbose_name=_("owner"),
    )
    owner_key = models.CharField(
        _("anonymous owner key"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("SHA-256 of the anonymous shopper's session key."),
    )
    image = models.FileField(
        _("photo"), upload_to=person_upload_to, storage=get_tryon_storage, max_length=200
    )
    content_hash = models.CharField(
        _("content hash"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("SHA-256 of the stored image: the same photo is kept once per owner."),
    )
    consent_at = models.DateTimeField(
        _("consent given at"), help_text=_("When the shopper agreed to the processing.")
    )
    own_clothes = models.JSONField(
        _("own clothes"),
        default=dict,
        blank=True,
        help_text=_(
            "What this photo's person wears, cut out once for 'keep my own clothes': kind → stored file."
        ),
    )
    person_check = models.JSONField(
        _("person check"),
        null=True,
        blank=True,
        default=None,
        help_text=_(
            "The verdict of the person check, made once when the photo came in (empty: not checked)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("person photo")
        verbose_name_plural = _("person photos")
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("user", "created_at"), name="tryon_photo_user_idx"),
            models.Index(fields=("owner_key", "created_at"), name="tryon_photo_owner_idx"),
        )

    def __str__(self) -> str:
        return f"PersonPhoto {self.public_id}"


class Status(models.TextChoices):
    """A try-on's status (see docs/lifecycle.rst). ``TryOn.Status`` is the same class."""

    QUEUED = "queued", _("Queued")
    SUBMITTING = "submitting", _("Submitting")
    SUBMITTED = "submitted", _("Submitted")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")


#: Finished for good (a retry starts a new attempt from failed or canceled).
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)
#: Admitted by the dispatcher: holding one of the provider's slots until the provider ends the task.
ACTIVE = (Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING)
#: Accepted by the provider: the task has a remote id and is polled.
IN_FLIGHT = (Status.SUBMITTED, Status.RUNNING)
#: Not finished: waiting in our queue or active.
UNFINISHED = (Status.QUEUED, *ACTIVE)
#: Ended without a result.
ENDED_BADLY = (Status.FAILED, Status.CANCELED)
TERMINAL_STATUSES = frozenset(TERMINAL)

#: The stages of a job: the try-on, then (when asked for) the provider's second pass.
STAGE_TRYON, STAGE_REFINE = "tryon", "refine"

#: Allowed status moves (see docs/lifecycle.rst). Terminal states leave only through retry. A job whose
#: second pass cannot be done succeeds with its first picture from wherever it stands (queued, submitting).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.QUEUED: (Status.SUBMITTING, Status.CANCELED, Status.FAILED, Status.SUCCEEDED),
    # back to queued: the provider proved it did not take the task (429, 5xx): wait for a slot again
    Status.SUBMITTING: (Status.SUBMITTED, Status.QUEUED, Status.FAILED, Status.CANCELED, Status.SUCCEEDED),
    # back to queued: a transient task failure (InternalError.Algo, ...) is submitted once more
    Status.SUBMITTED: (Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.QUEUED),
    Status.RUNNING: (Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.QUEUED),
    Status.SUCCEEDED: (),
    Status.FAILED: (Status.QUEUED,),
    Status.CANCELED: (Status.QUEUED,),
}


class TryOn(models.Model):
    """One try-on job: a person photo, one or two garments, and the provider's task."""

    Status = Status

    class Resolution(models.IntegerChoices):
        ORIGINAL = -1, _("Same as the person photo")
        R1024 = 1024, _("576×1024")
        R1280 = 1280, _("720×1280")

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tryons",
        verbose_name=_("owner"),
        help_text=_("The signed-in shopper who owns this job."),
    )
    owner_key = models.CharField(
        _("anonymous owner key"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("SHA-256 of the anonymous shopper's session key (the key itself is never stored)."),
    )
    product = models.ForeignKey(
        get_product_model_string(),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tryon_jobs",
        verbose_name=_("product"),
    )
    top_garment = models.ForeignKey(
        Garment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("top garment"),
    )
    bottom_garment = models.ForeignKey(
        Garment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("bottom garment"),
    )
    person_image = models.FileField(
        _("person photo"), upload_to=person_upload_to, storage=get_tryon_storage, max_length=200
    )
    person_photo = models.ForeignKey(
        PersonPhoto,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tryons",
        verbose_name=_("saved photo used"),
    )
    consent_at = models.DateTimeField(_("consent given at"), null=True, blank=True)
    person_check = models.JSONField(
        _("person check"),
        null=True,
        blank=True,
        default=None,
        help_text=_(
            "The verdict of the person check on the person photo (copied from a saved photo; empty: not checked)."
        ),
    )
    dedup_key = models.CharField(
        _("duplicate key"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("Hash of the photo, garments and parameters: the same request reuses this job."),
    )
    top_image = models.FileField(
        _("top image sent"),
        upload_to=snapshot_upload_to,
        storage=get_tryon_storage,
        blank=True,
        max_length=200,
        help_text=_("Snapshot of the top (or one-piece) image actually sent to the provider."),
    )
    bottom_image = models.FileField(
        _("bottom image sent"),
        upload_to=snapshot_upload_to,
        storage=get_tryon_storage,
        blank=True,
        max_length=200,
    )
    backend = models.CharField(_("backend"), max_length=50, help_text=_("Provider name, e.g. dashscope."))
    model_name = models.CharField(_("model"), max_length=64, help_text=_("Provider model, e.g. aitryon."))
    resolution = models.SmallIntegerField(
        _("resolution"), choices=Resolution.choices, default=Resolution.ORIGINAL
    )
    restore_face = models.BooleanField(
        _("restore face"), default=True, help_text=_("Keep the person's own face.")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    remote_id = models.CharField(_("provider task id"), max_length=64, blank=True, default="")
    request_id = models.CharField(_("provider request id"), max_length=64, blank=True, default="")
    remote_submitted_at = models.DateTimeField(_("provider submit time"), null=True, blank=True)
    remote_scheduled_at = models.DateTimeField(_("provider scheduled time"), null=True, blank=True)
    remote_ended_at = models.DateTimeField(_("provider end time"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")
    provider_error = models.JSONField(
        _("raw provider error"),
        default=dict,
        blank=True,
        help_text=_("The provider's own code, message, status."),
    )
    result_image = models.FileField(
        _("result image"), upload_to=result_upload_to, storage=get_tryon_storage, blank=True, max_length=200
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    poll_count = models.PositiveIntegerField(_("poll count"), default=0)
    image_count = models.PositiveSmallIntegerField(
        _("billed images"), default=0, help_text=_("usage.image_count reported by the provider.")
    )
    history = models.JSONField(_("earlier attempts"), default=list, blank=True)
    keep_own = models.BooleanField(
        _("keep own clothes"),
        default=False,
        help_text=_(
            "Trying on a top (or a bottom) only: the shopper keeps what they wear on the other half."
        ),
    )
    # -- the second pass (DashScope's aitryon-refiner) --------------------------------------------
    refine = models.BooleanField(
        _("refine"),
        default=False,
        help_text=_("After the try-on, a second pass makes the picture sharper and truer."),
    )
    gender = models.CharField(
        _("gender"), max_length=8, blank=True, default="", help_text=_("woman or man: the refiner needs it.")
    )
    stage = models.CharField(
        _("stage"),
        max_length=10,
        default=STAGE_TRYON,
        help_text=_("tryon, then refine when a second pass was asked for."),
    )
    coarse_image = models.FileField(
        _("first-pass result"),
        upload_to=result_upload_to,
        storage=get_tryon_storage,
        blank=True,
        max_length=200,
        help_text=_("The try-on's own picture, the refiner's input (kept while the second pass runs)."),
    )
    # -- the dispatcher's state: what happens next and when lives on the row, not in a broker message --
    route = models.CharField(
        _("route"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("The entry of the failover chain (TRYON['BACKENDS']) this job runs on."),
    )
    key_name = models.CharField(
        _("provider key"),
        max_length=64,
        blank=True,
        default="",
        help_text=_(
            "The name of the key of TRYON['KEY_POOL'] this job was admitted on (never the key itself)."
        ),
    )
    admitted_at = models.DateTimeField(_("admitted at"), null=True, blank=True)
    next_check_at = models.DateTimeField(
        _("next step at"),
        null=True,
        blank=True,
        help_text=_("When the pipeline acts on this job next (submit, poll); while queued: not before."),
    )
    lease_until = models.DateTimeField(
        _("leased until"),
        null=True,
        blank=True,
        help_text=_("A worker is working on this job until then."),
    )
    ticket = models.PositiveIntegerField(
        _("ticket"),
        default=0,
        help_text=_("Bumped at every scheduled step, so a stale or duplicate task does nothing."),
    )
    submit_sent_at = models.DateTimeField(
        _("submit sent at"),
        null=True,
        blank=True,
        help_text=_(
            "A submit whose answer never arrived: reconciled with the provider's task list before any resubmit."
        ),
    )
    step_retries = models.PositiveSmallIntegerField(_("retries of this step"), default=0)
    resubmits = models.PositiveSmallIntegerField(
        _("transient resubmits"),
        default=0,
        help_text=_("Provider tasks that failed transiently and were sent again."),
    )
    uploads = models.JSONField(
        _("provider uploads"),
        default=dict,
        blank=True,
        help_text=_(
            "The provider's temporary copies of the inputs (oss://…), reused by resubmits within their lifetime."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = TryOnQuerySet.as_manager()

    class Meta:
        verbose_name = _("try-on")
        verbose_name_plural = _("try-ons")
        ordering = ("-created_at",)
        # A list, as in migration 0003: a tuple would compare unequal and call for a new migration.
        permissions = [("view_tryon_images", _("Can see shoppers' photos and try-on results"))]  # noqa: RUF012
        indexes = (
            models.Index(fields=("status", "created_at"), name="tryon_status_created_idx"),
            models.Index(fields=("status", "updated_at"), name="tryon_status_updated_idx"),
            models.Index(fields=("user", "created_at"), name="tryon_user_created_idx"),
            models.Index(fields=("owner_key", "created_at"), name="tryon_owner_created_idx"),
            models.Index(fields=("remote_id",), name="tryon_remote_id_idx"),
            models.Index(fields=("error_code", "created_at"), name="tryon_error_created_idx"),
            models.Index(fields=("dedup_key", "created_at"), name="tryon_dedup_idx"),
            models.Index(fields=("status", "next_check_at"), name="tryon_status_next_idx"),
            models.Index(fields=("status", "model_name", "key_name"), name="tryon_status_model_key_idx"),
            models.Index(fields=("status", "route", "model_name"), name="tryon_status_route_idx"),
        )

    def __str__(self) -> str:
        return f"TryOn {self.public_id} ({self.status})"

    @property
    def has_result(self) -> bool:
        """Succeeded, with its picture still stored (not yet deleted or purged)."""
        return self.status == Status.SUCCEEDED and bool(self.result_image)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def person_file(self) -> Any:
        """The person photo this job uses: its own upload, or the saved photo it references (empty if deleted)."""
        if self.person_image or self.person_photo_id is None:
            return self.person_image
        photo = self.person_photo
        return photo.image if photo is not None else self.person_image

    #: The file fields a job owns (a referenced saved photo is the shopper's, not the job's).
    FILE_FIELDS = ("person_image", "top_image", "bottom_image", "result_image", "coarse_image")

    def owned_files(self) -> list[str]:
        """Storage names of the files this job owns (``FILE_FIELDS``): deleted with the job."""
        return [f.name for f in (getattr(self, name) for name in self.FILE_FIELDS) if f]

    def image_files(self) -> tuple[Any, Any, Any, Any]:
        """Person photo, top, bottom and result (each possibly empty), as shown to reviewers."""
        return (self.person_file, self.top_image, self.bottom_image, self.result_image)

    @property
    def queue_wait(self) -> float | None:
        """Seconds from creation until the provider accepted the job."""
        return (self.submitted_at - self.created_at).total_seconds() if self.submitted_at else None

    @property
    def generation_time(self) -> float | None:
        """Seconds from the provider accepting the job until it finished."""
        if self.submitted_at and self.finished_at:
            return (self.finished_at - self.submitted_at).total_seconds()
        return None


class TryOnAttempt(models.Model):
    """One paid attempt (a create, a retry, a re-run): the ledger behind daily limits and budgets.

    Rows outlive their job (deleting a try-on gives no quota back); an attempt canceled before it was
    submitted is released and counts no more. See ``django_tryon.quotas``.
    """

    job = models.ForeignKey(
        TryOn,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempt_set",
        verbose_name=_("try-on"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("charged to shopper"),
        help_text=_("Empty for the merchant's own runs (admin, commands)."),
    )
    owner_key = models.CharField(_("charged to anonymous owner"), max_length=64, blank=True, default="")
    backend = models.CharField(_("backend"), max_length=50)
    model_name = models.CharField(_("model"), max_length=64)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=4, default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    released_at = models.DateTimeField(
        _("released at"), null=True, blank=True, help_text=_("Canceled before submission: no longer counted.")
    )

    class Meta:
        verbose_name = _("paid attempt")
        verbose_name_plural = _("paid attempts")
        indexes = (
            models.Index(fields=("created_at",), name="tryon_attempt_created_idx"),
            models.Index(fields=("user", "created_at"), name="tryon_attempt_user_idx"),
            models.Index(fields=("owner_key", "created_at"), name="tryon_attempt_owner_idx"),
        )

    def __str__(self) -> str:
        return f"{self.model_name} attempt of {self.job_id} at {self.created_at:%Y-%m-%d %H:%M}"


class TryOnLock(models.Model):
    """A named row that a transaction updates to serialize a critical section across processes and hosts.

    An UPDATE takes a row lock on PostgreSQL/MySQL and the single writer lock on SQLite, so the
    section's reads see every earlier holder's committed writes.
    """

    name = models.CharField(_("name"), max_length=100, primary_key=True)
    held_at = models.DateTimeField(_("last held at"), null=True, blank=True)

    class Meta:
        verbose_name = _("lock")
        verbose_name_plural = _("locks")

    def __str__(self) -> str:
        return self.name


class TryOnRoute(models.Model):
    """The health of one entry of the failover chain: its circuit breaker and whether it refuses us."""

    name = models.CharField(_("route"), max_length=64, primary_key=True)
    failures = models.PositiveIntegerField(_("outages in a row"), default=0)
    open_until = models.DateTimeField(
        _("breaker open until"),
        null=True,
        blank=True,
        help_text=_("No job is sent to this route before then."),
    )
    refused_since = models.DateTimeField(
        _("refused since"),
        null=True,
        blank=True,
        help_text=_(
            "The provider refuses this route's model or account (retired, not purchased, no credits)."
        ),
    )
    refused_code = models.CharField(_("refusal code"), max_length=64, blank=True, default="")
    refused_message = models.TextField(_("refusal message"), blank=True, default="")
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("route health")
        verbose_name_plural = _("route health")

    def __str__(self) -> str:
        return self.name


# -- Webhooks (issue 15, point 1): endpoints merchants register, deliveries, and each attempt's log ------
WEBHOOK_EVENTS = ("tryon.succeeded", "tryon.failed", "tryon.canceled")


def generate_webhook_secret() -> str:
    """A new endpoint's signing secret: 32 random bytes, URL-safe."""
    import secrets

    return f"whsec_{secrets.token_urlsafe(32)}"


def default_webhook_events() -> list[str]:
    return list(WEBHOOK_EVENTS)


def validate_webhook_events(value: Any) -> None:
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not value or not set(value) <= set(WEBHOOK_EVENTS):
        raise ValidationError(
            _("Choose one or more of: %(events)s."), params={"events": ", ".join(WEBHOOK_EVENTS)}
        )


def validate_webhook_url(value: str) -> None:
    """Refuse a webhook URL that may not be called (checked again at every send)."""
    from .webhooks import validate_url

    validate_url(value)


class WebhookEndpoint(models.Model):
    """A URL that receives try-on events, signed with the endpoint's secret."""

    name = models.SlugField(
        _("name"),
        max_length=50,
        unique=True,
        help_text=_("What an API client names in a request's webhook field."),
    )
    url = models.URLField(
        _("URL"),
        max_length=500,
        validators=[validate_webhook_url],
        help_text=_("https:// address on the public internet that receives the events (POST, JSON)."),
    )
    secret = models.CharField(
        _("signing secret"),
        max_length=100,
        default=generate_webhook_secret,
        help_text=_("The receiver checks the X-Tryon-Signature header with it. Change it to rotate."),
    )
    events = models.JSONField(
        _("events"),
        default=default_webhook_events,
        validators=[validate_webhook_events],
        help_text=_("The events sent to this endpoint."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive endpoints get nothing and cannot be named.")
    )
    send_all = models.BooleanField(
        _("every try-on"),
        default=False,
        help_text=_("Send the events of every try-on, not only of those that name this endpoint."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tryon_webhooks",
        verbose_name=_("API client"),
        help_text=_("The account that may name this endpoint when it creates a try-on (empty: nobody)."),
    )
    disabled_reason = models.CharField(
        _("disabled because"),
        max_length=200,
        blank=True,
        default="",
        help_text=_("Set when the app switched the endpoint off (the receiver answered 410 Gone)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class TryOnWebhook(models.Model):
    """The endpoint a try-on's API client named in its request (``webhook`` field)."""

    job = models.OneToOneField(
        TryOn, on_delete=models.CASCADE, related_name="webhook_link", verbose_name=_("try-on")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="job_links", verbose_name=_("endpoint")
    )

    class Meta:
        verbose_name = _("try-on webhook")
        verbose_name_plural = _("try-on webhooks")

    def __str__(self) -> str:
        return f"{self.job_id} → {self.endpoint_id}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: what to send, and what happens next and when (the row, not a message)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(
        _("delivery id"),
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text=_("Sent as X-Tryon-Delivery."),
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.CharField(_("event"), max_length=32)
    event_id = models.CharField(
        _("event id"),
        max_length=40,
        help_text=_("The payload's id: the same for every endpoint and every redelivery of the event."),
    )
    job = models.ForeignKey(
        TryOn,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
        verbose_name=_("try-on"),
    )
    payload = models.JSONField(
        _("payload"), help_text=_("The event as sent (the result URL is renewed per attempt).")
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(
        _("sending until"), null=True, blank=True, help_text=_("A worker is sending it until then.")
    )
    give_up_at = models.DateTimeField(
        _("retried until"), help_text=_("No attempt after this (WEBHOOK_RETRY_WINDOW after the event).")
    )
    last_status = models.PositiveSmallIntegerField(_("last response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ("-created_at", "-pk")
        constraints = (
            models.UniqueConstraint(fields=("endpoint", "event_id"), name="tryon_webhook_event_once"),
        )
        indexes = (
            models.Index(
                fields=("endpoint", "event", "state", "created_at"), name="tryon_whdelivery_queue_idx"
            ),
            models.Index(fields=("state", "next_attempt_at"), name="tryon_whdelivery_due_idx"),
        )

    def __str__(self) -> str:
        return f"{self.event} {self.event_id} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: when, how long, and what came back."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started at"))
    duration = models.FloatField(_("duration (s)"))
    address = models.CharField(_("address"), max_length=64, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True, default="")
    response_excerpt = models.TextField(
        _("response excerpt"), blank=True, default="", help_text=_("The first characters of the answer.")
    )

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ("delivery", "number")

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


# -- Funnel analytics (issue 15, point 4): daily aggregates only -----------------------------------
class FunnelDay(models.Model):
    """How often one step of the shopping funnel happened for one product on one day.

    Aggregates only: no shopper, session, address, photo or job is stored here (see docs/analytics.rst).
    Rows are written by ``django_tryon.funnel`` with atomic upserts.
    """

    date = models.DateField(_("date"), help_text=_("The day, in the site's time zone."))
    product = models.ForeignKey(
        get_product_model_string(),
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("product"),
    )
    step = models.CharField(_("step"), max_length=24, help_text=_("The step of the funnel, e.g. opened."))
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("funnel count")
        verbose_name_plural = _("funnel counts")
        ordering = ("-date", "step")
        constraints = (
            models.UniqueConstraint(fields=("date", "product", "step"), name="tryon_funnel_day_unique"),
        )
        indexes = (models.Index(fields=("date", "step"), name="tryon_funnel_date_step_idx"),)

    def __str__(self) -> str:
        return f"{self.date} {self.product_id} {self.step}: {self.count}"


# -- Sharing a result (issue 15, "act on the result"): django_tryon/sharing.py ----------------------------------


class ShareLink(models.Model):
    """A public, expiring, revocable link to one try-on's result picture (and nothing else of the job).

    The shopper creates it with an explicit click. The page and the image it serves check, on every request,
    that the link is neither revoked nor expired and that the job still has its result: deleting the try-on
    (the row cascades) or purging its files ends the link at once.
    """

    token = models.CharField(
        _("token"),
        max_length=64,
        unique=True,
        editable=False,
        help_text=_("The random, unguessable part of the public URL."),
    )
    job = models.ForeignKey(
        TryOn,
        on_delete=models.CASCADE,
        related_name="share_links",
        verbose_name=_("try-on"),
        help_text=_("The try-on whose result picture this link shows."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), help_text=_("The link answers 410 Gone after this."))
    revoked_at = models.DateTimeField(
        _("revoked at"), null=True, blank=True, help_text=_("When the shopper stopped sharing.")
    )

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        ordering = ("-created_at",)
        indexes = (models.Index(fields=("job", "revoked_at", "expires_at"), name="tryon_share_job_idx"),)

    def __str__(self) -> str:
        return f"ShareLink of {self.job_id} until {self.expires_at:%Y-%m-%d %H:%M}"
