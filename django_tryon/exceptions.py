"""The django-tryon exception tree."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .messages import message_for


class TryOnError(Exception):
    """Base of every django-tryon error. Carries a stable ``code`` and optional context.

    ``str()`` is the code, the message, the HTTP status and the provider's request id: never a
    credential, and never the response body, which is kept in ``response_body`` for code that
    inspects it (an answer may echo what was sent, and a proxy's error page anything at all).
    """

    default_code = "TryOnError"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        backend: Any = None,
        tryon: Any = None,
        status_code: int | None = None,
        response_body: Any = None,
        request_id: str = "",
    ) -> None:
        self.code = code or self.default_code
        self.message = message or message_for(self.code, "en")
        self.backend = backend
        self.tryon = tryon
        self.status_code = status_code
        self.response_body = response_body
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.status_code is not None:
            text += f" (HTTP {self.status_code})"
        if self.request_id:
            text += f" [request_id {self.request_id}]"
        return text

    def messages(self) -> dict[str, str]:
        """The shopper-facing message in English and Simplified Chinese."""
        return {
            "en": message_for(self.code, "en", self.message),
            "zh-hans": message_for(self.code, "zh-hans"),
        }


class TryOnValidationError(TryOnError, ValueError):
    """Bad input (an image or parameter the provider would refuse). Nothing was sent or charged."""

    default_code = "InvalidParameter"
    #: The input at fault (an API field such as ``"person_image"``), when there is one.
    field: str | None = None


class TryOnPersonRefused(TryOnValidationError):
    """The person check refused the photo (``TRYON["PERSON_CHECK"] = "refuse"``): nothing stored or charged.

    ``verdict`` is the check's stable verdict (``no_person``, ``not_full_body``, ...), ``reasons`` the
    shopper's messages for it (translatable: rendered in the language active when read), ``details``
    the engine's own figures and English reasons.
    """

    default_code = "InvalidPerson"

    def __init__(
        self, *args: Any, verdict: str = "", reasons: Any = (), details: Any = None, **kwargs: Any
    ) -> None:
        self.verdict = verdict
        self.reasons = list(reasons)
        self.details = dict(details or {})
        super().__init__(*args, **kwargs)

    def messages(self) -> dict[str, str]:
        """The reasons in English and Simplified Chinese (the verdict's own message, not the code's)."""
        if not self.reasons:
            return super().messages()
        from django.utils import translation

        texts = {}
        for language in ("en", "zh-hans"):
            with translation.override(language):
                texts[language] = " ".join(str(reason) for reason in self.reasons)
        return texts


class TryOnQuotaExceeded(TryOnError):
    """A daily limit or budget is used up; ``reset_at`` says when it resets."""

    default_code = "quota_exceeded"

    def __init__(self, *args: Any, reset_at: Any = None, **kwargs: Any) -> None:
        self.reset_at = reset_at
        super().__init__(*args, **kwargs)


class TryOnProviderError(TryOnError):
    """The provider answered with an error, or could not be reached."""

    default_code = "ProviderError"


class TryOnRetryableError(TryOnProviderError):
    """A transient failure: 429 family, 5xx, timeouts, connection errors. Worth retrying with backoff.

    ``accepted_maybe`` is true when a submit timed out after the request was sent: the provider may
    have accepted the task.
    """

    default_code = "ProviderUnavailable"

    def __init__(
        self, *args: Any, retry_after: float | None = None, accepted_maybe: bool = False, **kwargs: Any
    ):
        self.retry_after = retry_after
        self.accepted_maybe = accepted_maybe
        super().__init__(*args, **kwargs)


class TryOnProviderRejected(TryOnProviderError):
    """A final answer from the provider (bad request, bad key, no access). Retrying will not help."""

    default_code = "ProviderRejected"


class TryOnModelUnavailable(TryOnProviderRejected):
    """The provider refused the model itself: retired, not purchased, or not found."""

    default_code = "ModelNotAvailable"


class TryOnConfigurationError(ImproperlyConfigured):
    """A setting is missing or wrong. Deliberately outside the TryOnError tree so it is never silenced."""


class TryOnImproperlyInstalled(TryOnConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, missing_package: str, install_extra: str) -> None:
        super().__init__(
            f"{missing_package} is needed for this feature. Install it with: "
            f'pip install "django-tryon[{install_extra}]"'
        )
