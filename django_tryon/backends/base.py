"""The backend interface: submit → remote id; poll → normalized state; cancel; capabilities.

Backends receive and return plain data (URLs, bytes, dataclasses); they never touch models.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from ..exceptions import TryOnConfigurationError


class RemoteState(str, enum.Enum):
    """A provider task's state, normalized across providers."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Capabilities:
    """What the provider allows and costs, for dispatching, polling and budgeting."""

    max_concurrency: int
    submit_rate: float  # submits per second
    typical_duration: float  # seconds from submit to result
    price_per_image: Decimal
    #: The currency of ``price_per_image``: the budget uses it only when it is ``TRYON["CURRENCY"]``.
    currency: str = "CNY"
    supports_upload: bool = False
    prefers_upload: bool = False  # "auto" input URLs use upload() first (in-process backends)
    supports_task_list: bool = False  # list_tasks(): an unanswered submit can be reconciled
    #: Seconds one request may take (a synchronous backend's generation call): the step's lease covers it.
    longest_request: float = 0.0
    #: Garments one try-on may carry (2: a top and a bottom together); routes that take fewer are skipped.
    max_garments: int = 2
    #: The model of this provider's second pass (DashScope: aitryon-refiner); "" when it has none.
    refiner_model: str = ""
    #: The model that cuts a person's clothes out of a photo (DashScope: aitryon-parsing-v1); "" when none.
    parser_model: str = ""


@dataclass(frozen=True)
class TryOnInput:
    """One try-on request in provider-neutral terms. URLs must be reachable by the provider."""

    person_image_url: str
    top_garment_url: str | None = None
    bottom_garment_url: str | None = None
    resolution: int = -1
    restore_face: bool = True
    top_is_one_piece: bool = False  # the top slot holds a dress or a jumpsuit
    coarse_image_url: str | None = None  # the second pass: the first pass's picture
    gender: str = ""  # the second pass: "woman" or "man"


@dataclass(frozen=True)
class SubmitResult:
    remote_id: str
    request_id: str = ""
    #: A synchronous backend's final state (with the result URL): no poll follows.
    finished: PollResult | None = None


@dataclass(frozen=True)
class RemoteTask:
    """One entry of the provider's task list (for reconciling a submit whose answer was lost)."""

    remote_id: str
    created_at: datetime | None
    model: str = ""
    status: str = ""


@dataclass(frozen=True)
class PollResult:
    """A provider task's state. Times are aware datetimes (or None when the provider gave none)."""

    remote_id: str
    state: RemoteState
    request_id: str = ""
    submitted_at: datetime | None = None
    scheduled_at: datetime | None = None
    ended_at: datetime | None = None
    result_url: str | None = None
    error_code: str = ""
    error_message: str = ""
    image_count: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class BaseTryOnBackend:
    """Subclass this for a provider. Options come from ``TRYON["OPTIONS"]`` as keyword arguments."""

    #: Short provider name stored on each job, e.g. "dashscope".
    name: str = ""
    #: Option name → default. Unknown options are a configuration error.
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise TryOnConfigurationError(
                f"Invalid option {sorted(unknown)[0]!r} for {type(self).__name__} in TRYON['OPTIONS']; "
                f"valid options: {', '.join(sorted(self.default_options))}"
            )
        if not self.name:
            raise TryOnConfigurationError(f"{type(self).__name__} must set the class attribute 'name'")
        self.options = {**self.default_options, **options}

    @property
    def model(self) -> str:
        """The provider model this instance submits to."""
        return str(self.options.get("model", ""))

    @property
    def capabilities(self) -> Capabilities:
        raise NotImplementedError(f"{type(self).__name__} must implement capabilities")

    def submit(self, request: TryOnInput) -> SubmitResult:
        raise NotImplementedError(f"{type(self).__name__} must implement submit()")

    def poll(self, remote_id: str) -> PollResult:
        raise NotImplementedError(f"{type(self).__name__} must implement poll()")

    def cancel(self, remote_id: str) -> bool:
        """Ask the provider to cancel; True if it accepted, False if it is too late."""
        raise NotImplementedError(f"{type(self).__name__} must implement cancel()")

    def check_credentials(self) -> None:
        """Raise ``TryOnConfigurationError`` when there are no credentials to call the provider with.

        Backends look their key up when they first need it, not when they are built, so a build step
        without secrets (``migrate``, ``collectstatic``) still loads the settings. ``manage.py check
        --deploy`` calls this (``django_tryon.E004``), and so does every new try-on before it stores
        anything. The default (a backend without credentials, such as ``LocalBackend``) does nothing.
        """

    def download(self, url: str) -> bytes:
        """Fetch a result image the provider produced."""
        raise NotImplementedError(f"{type(self).__name__} must implement download()")

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        """Upload an input to the provider's own temporary storage; return a URL it accepts."""
        raise NotImplementedError(f"{type(self).__name__} does not support provider uploads")

    def parse_clothes(self, image_url: str, kind: str) -> bytes | None:
        """The ``kind`` ("upper", "lower", "dress") of clothes the person wears, cut out (``parser_model``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot parse clothes")

    def list_tasks(self, *, since: datetime, until: datetime) -> list[RemoteTask]:
        """Tasks of this key created between ``since`` and ``until`` (``supports_task_list``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its tasks")

    #: Task error codes that mean "try again": a resubmit may well succeed (``TRANSIENT_RESUBMITS``).
    transient_failure_codes: frozenset[str] = frozenset()

    def is_transient_failure(self, code: str) -> bool:
        """Whether a task that ended FAILED with ``code`` is worth submitting again."""
        return code in self.transient_failure_codes
