"""The OpenAPI contract of the REST API (drf-spectacular): errors, security, uploads, request rules.

The try-on views carry :class:`TryOnAutoSchema` themselves, so the contract is the same in the app's
own schema (``/tryon/api/schema/``, :class:`TryOnSchemaView`) and in a project-wide one. (drf-spectacular
still needs ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` to be its ``AutoSchema``, for ``@extend_schema``
on view methods.) What it adds to drf-spectacular's schema:

- every operation documents its error responses with the envelope of ``api/errors.py`` (the
  ``ErrorEnvelope`` component) and the codes each status carries;
- the security of each operation: token or session cookie, and ``{}`` (no credentials) while
  ``TRYON["ALLOW_ANONYMOUS"]`` is on;
- uploads are ``format: binary`` parts with the image types the validators accept;
- ``POST tryons/`` says what one of its fields must be given (a person photo, a garment source, the
  gender for the second pass), so an empty request is not schema-valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import append_meta, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.schemas.inspectors import ViewInspector

from .. import __version__
from ..conf import tryon_settings
from ..messages import MESSAGES
from .serializers import TryOnCreateSerializer

#: What the validators accept from shoppers (``validators.SENDABLE_FORMATS`` and WebP, re-encoded).
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")

#: The codes of each error status, by the situations that give them (``api/errors.py``).
INVALID_PHOTO = ("InvalidInputLength", "InvalidURL", "InvalidPerson")
INVALID_TRYON = ("InvalidParameter", *INVALID_PHOTO, "InvalidGarment", "consent_required", "invalid_webhook")
INVALID_UPLOAD = ("InvalidParameter", *INVALID_PHOTO, "consent_required")
OVER_A_LIMIT = ("quota_exceeded", "budget_exceeded", "queue_full", "rate_limited")
UNAVAILABLE = ("service_unavailable",)

#: The description of each error status (Markdown, as OpenAPI descriptions are), before its codes.
STATUS_TEXTS = {
    400: "The request is invalid: nothing was stored, sent or charged.",
    401: "The token is not valid, or sign-in is required (the site does not allow anonymous shoppers).",
    403: "The CSRF token is missing or wrong: every unsafe request that no token authenticated needs "
    "the `X-CSRFToken` header (signed-in and anonymous shoppers alike).",
    404: "No such resource, or not yours (a malformed id too).",
    409: "The try-on is not in a state that allows this.",
    429: "Over a limit: `reset_at` and the `Retry-After` header say when to try again.",
    502: "The provider refused the request or could not be reached: `code` is one of these or the "
    "provider's own.",
    503: "The try-on service is not configured.",
}


class ErrorDetailSerializer(serializers.Serializer):
    """One error, in the request's language (English, or Simplified Chinese)."""

    code = serializers.CharField(
        help_text="A stable code; each response lists those it carries. All of them: "
        + ", ".join(f"`{code}`" for code in MESSAGES)
        + "."
    )
    message = serializers.CharField(help_text="For the shopper, in the request's language.")
    field = serializers.CharField(allow_null=True, help_text="The request field at fault, or null.")
    reset_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="429 only: when the limit resets."
    )
    verdict = serializers.CharField(
        required=False,
        help_text="`InvalidPerson` only: the person check's verdict "
        "(no_person, several_people, not_full_body, ...).",
    )
    reasons = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="`InvalidPerson` only: what is wrong, for the shopper.",
    )
    details = serializers.DictField(
        required=False,
        help_text="`InvalidPerson` only: the engine's own figures and English sentences, for developers.",
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    """Every error of the try-on API (4xx and 5xx) has this one shape."""

    error = ErrorDetailSerializer()


def error_response(status: int, codes: Iterable[str]) -> OpenApiResponse:
    """The documented ``status`` with the envelope, its description ending with the ``codes`` it carries."""
    listed = ", ".join(f"`{code}`" for code in codes)
    return OpenApiResponse(ErrorEnvelopeSerializer, description=f"{STATUS_TEXTS[status]} Codes: {listed}.")


def error_responses(codes: Mapping[int, Iterable[str]]) -> dict[int, OpenApiResponse]:
    """``{status: codes}`` as ``extend_schema(responses=...)`` entries (the errors an action adds)."""
    return {status: error_response(status, status_codes) for status, status_codes in codes.items()}


#: ``Retry-After`` of every 429 (``api/errors.py`` sets it with ``reset_at``).
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    required=True,
    description="Seconds to wait before trying again.",
)
#: ``Location`` of a new try-on.
LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=[202],
    required=True,
    description="The new try-on's URL (poll it with GET).",
)


def upload(serializer: Any, field: str) -> dict[str, OpenApiRequest]:
    """``extend_schema(request=...)`` for a multipart upload of an image in ``field``."""
    encoding = {field: {"contentType": ", ".join(IMAGE_MEDIA_TYPES)}}
    return {"multipart/form-data": OpenApiRequest(serializer, encoding=encoding)}


class TryOnAutoSchema(AutoSchema):
    """drf-spectacular's ``AutoSchema`` with the try-on API's errors, security and uploads."""

    def get_auth(self) -> list[dict[str, list[str]]]:
        auth = super().get_auth()
        if tryon_settings.ALLOW_ANONYMOUS and {} not in auth:
            auth.append({})  # anonymous shoppers, owned by their browser session
        return auth

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        if direction == "request" and isinstance(field, serializers.FileField):  # a file part, not a URL
            binary = build_basic_type(OpenApiTypes.BINARY) or {}  # always a dict for BINARY
            return append_meta(binary, self._get_serializer_field_meta(field, direction))
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _get_request_body(self, direction: Any = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if (
            body is not None
        ):  # every body of the API is required (the rules sit in oneOf/allOf, not in "required")
            body["required"] = True
        return body

    def generic_errors(self) -> dict[int, tuple[str, ...]]:
        """The error statuses every operation of this kind can answer with, and their codes."""
        errors: dict[int, tuple[str, ...]] = {401: ("authentication_required",)}
        if self.method not in SAFE_METHODS:
            errors[403] = ("permission_denied",)
        if self._get_paginator() is not None:
            errors[400] = ("InvalidParameter",)  # page_size
        if "{" in self.path or self._get_paginator() is not None:  # an id in the path, or a page number
            errors[404] = ("not_found",)
        return errors

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status, codes in self.generic_errors().items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    error_response(status, codes), str(status)
                )
        return dict(sorted(responses.items()))


class DefaultTryOnSchema(ViewInspector):
    """``schema = DefaultTryOnSchema()``: a fresh :class:`TryOnAutoSchema` per view, like DRF's DefaultSchema.

    Read on the class, it is a ``TryOnAutoSchema`` too: drf-spectacular builds the schema of an action
    with ``@extend_schema`` on the view's schema class, whatever ``DEFAULT_SCHEMA_CLASS`` the project has.
    """

    def __get__(self, instance: Any, owner: Any) -> Any:
        result = super().__get__(instance, owner)
        if not isinstance(result, DefaultTryOnSchema):
            return result  # a schema set on this view (drf-spectacular does, for actions with @extend_schema)
        inspector = TryOnAutoSchema()
        if instance is not None:
            inspector.view = instance
        return inspector


class CsrfSessionScheme(SessionScheme):
    """The session cookie of :class:`~django_tryon.api.authentication.CsrfSessionAuthentication`."""

    target_class = "django_tryon.api.authentication.CsrfSessionAuthentication"
    name = (
        "sessionCookie"  # not drf-spectacular's "cookieAuth", which a project's SessionAuthentication may use
    )
    priority = 0

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            **super().get_security_definition(auto_schema),
            "description": "The browser's session (a signed-in or an anonymous shopper); unsafe requests "
            "also need the X-CSRFToken header.",
        }


class TryOnCreateExtension(OpenApiSerializerExtension):
    """``POST tryons/``: the rules of ``TryOnCreateSerializer.validate`` and ``services.create_tryon``.

    A person photo: ``person_image`` with ``consent`` true, or ``person_photo`` (not both). A garment
    source: ``product`` (its active garments), ``top_garment`` or ``bottom_garment``. The second pass
    (``refine`` true) needs the ``gender``, resolution -1 and ``restore_face`` (the site's defaults
    count when they are left out) and a top: ``top_garment``, or a ``product`` without ``bottom_garment``.
    Whether the ids exist and the garments fit their slots is for the server to say (404, 400).
    """

    target_class = TryOnCreateSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        # The rules sit in allOf, beside the properties: client generators keep the properties as one model
        # (a top-level oneOf would make them a union of its branches). Values are pinned with "not", as
        # drf-spectacular's enum hook would turn inline enums into components.
        rules: list[dict[str, Any]] = []
        if "person_image" in schema["properties"]:
            upload = {
                "required": ["person_image", "consent"],
                "properties": {"consent": {"not": {"enum": [False]}}},
            }
            rules.append(
                {
                    "oneOf": [
                        {**upload, "not": {"required": ["person_photo"]}},
                        {"required": ["person_photo"], "not": {"required": ["person_image"]}},
                    ]
                }
            )
        else:
            schema["required"] = sorted({*schema.get("required", ()), "person_photo"})
        rules.append(
            {"anyOf": [{"required": [name]} for name in ("product", "top_garment", "bottom_garment")]}
        )
        second_pass: dict[str, Any] = {
            "required": ["gender"],
            "properties": {
                "resolution": {"not": {"enum": [1024, 1280]}},
                "restore_face": {"not": {"enum": [False]}},
            },
            "anyOf": [
                {"required": ["top_garment"]},
                {"required": ["product"], "not": {"required": ["bottom_garment"]}},
            ],
        }
        if tryon_settings.DEFAULT_RESOLUTION != -1:
            second_pass["required"].append("resolution")
        if tryon_settings.RESTORE_FACE is not True:
            second_pass["required"].append("restore_face")
        rules.append({"anyOf": [{"properties": {"refine": {"not": {"enum": [True]}}}}, second_pass]})
        schema["allOf"] = rules
        return schema


class PhotoCreateExtension(OpenApiSerializerExtension):
    """``POST photos/``: a photo is kept only with ``consent`` true (``services.save_photo``)."""

    target_class = "django_tryon.api.serializers.PhotoCreateSerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["properties"]["consent"]["not"] = {"enum": [False]}
        return schema


class TryOnCreateFromPhotoSerializer(TryOnCreateSerializer):
    """``POST tryons/`` as JSON or form-encoded: a saved photo (files need multipart)."""

    person_image = None  # type: ignore[assignment]
    consent = None  # type: ignore[assignment]


#: What the app's schema view says about itself unless ``SPECTACULAR_SETTINGS`` does.
SCHEMA_SETTINGS = {
    "TITLE": "django-tryon",
    "VERSION": __version__,
    "DESCRIPTION": (
        "The shopper-facing REST API of django-tryon: virtual try-on jobs (create, poll, retry, cancel, "
        "delete), saved person photos and the garments of a product. Logged-in shoppers own their jobs by "
        "user, anonymous shoppers by their browser session (when the site allows them); anything not yours "
        "answers 404. Every error has one shape, the ErrorEnvelope, with a stable code and a message in the "
        "request's language."
    ),
}


def only_tryon_endpoints(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """drf-spectacular preprocessing hook: keep the try-on API's own operations."""
    from .views import TryOnAPIMixin

    return [
        endpoint for endpoint in endpoints if issubclass(getattr(endpoint[3], "cls", object), TryOnAPIMixin)
    ]


class TryOnSchemaView(SpectacularAPIView):
    """The try-on API's schema (``api/schema/``): its own operations, titled by the package.

    ``SPECTACULAR_SETTINGS`` still rule: a project's ``TITLE``, ``VERSION`` or ``DESCRIPTION`` wins,
    and its ``PREPROCESSING_HOOKS`` run before the one that keeps the try-on operations.
    """

    @property
    def custom_settings(self) -> dict[str, Any]:  # type: ignore[override]
        project = getattr(settings, "SPECTACULAR_SETTINGS", None) or {}
        own: dict[str, Any] = {key: value for key, value in SCHEMA_SETTINGS.items() if key not in project}
        own["PREPROCESSING_HOOKS"] = [
            *project.get("PREPROCESSING_HOOKS", ()),
            f"{__name__}.only_tryon_endpoints",
        ]
        return own
