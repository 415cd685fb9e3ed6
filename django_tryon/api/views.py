"""API views: thin; every change goes through ``django_tryon.services``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from .. import services, sharing
from ..conf import tryon_settings
from ..models import Garment, PersonPhoto, TryOn, get_product_model
from ..owners import request_owner
from . import errors
from .schema import (
    INVALID_TRYON,
    INVALID_UPLOAD,
    LOCATION,
    OVER_A_LIMIT,
    RETRY_AFTER,
    UNAVAILABLE,
    DefaultTryOnSchema,
    TryOnCreateFromPhotoSerializer,
    error_responses,
    upload,
)
from .serializers import (
    GarmentSerializer,
    PhotoCreateSerializer,
    PhotoSerializer,
    ShareLinkSerializer,
    TryOnCreateSerializer,
    TryOnSerializer,
)
from .throttling import throttles_for


class ShopperPermission(BasePermission):
    """Logged-in shoppers always; anonymous shoppers when ``TRYON["ALLOW_ANONYMOUS"]``."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.user.is_authenticated or tryon_settings.ALLOW_ANONYMOUS:
            return True
        raise NotAuthenticated()


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Any) -> int | None:
        self.page_size = tryon_settings.API_PAGE_SIZE
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and int(raw) > 0):  # DRF would ignore it: say so instead
            raise ValidationError({self.page_size_query_param: ["A positive integer."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page (at most {self.max_page_size})."
        return parameters


if TYPE_CHECKING:  # the mixin is always combined with a DRF generic view: type-check it as one
    _GenericView = GenericAPIView
else:
    _GenericView = object


class TryOnAPIMixin(_GenericView):
    """Shared by the try-on views: authentication, CSRF, throttles, the error envelope, owner-only data."""

    permission_classes = (ShopperPermission,)
    schema = DefaultTryOnSchema()
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    #: Ids in URLs are UUIDs; anything else matches no route and answers the envelope's 404 (``api/urls.py``).
    lookup_value_converter = "uuid"
    #: Per-address throttle scope (``TRYON["THROTTLE_RATES"]``) of each view action that creates or uploads.
    throttle_scopes: ClassVar[dict[str, str]] = {}

    def get_authenticators(self) -> list[Any]:
        classes = (
            getattr(self, "authentication_classes_override", None)
            or tryon_settings.API_AUTHENTICATION_CLASSES
        )
        return [cls() for cls in classes]

    def get_throttles(self) -> list[Any]:
        scope = self.throttle_scopes.get(getattr(self, "action", None) or "")
        return throttles_for(scope) if scope else []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """CSRF for every unsafe request that no token authenticated (session users and anonymous shoppers).

        Only an authenticator that returns credentials (``request.auth``: a token) lifts it: a browser
        sends cookies and HTTP Basic credentials by itself, never a token. An ``Authorization`` header
        that no authenticator accepted changes nothing.
        """
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS and request.auth is None:
            SessionAuthentication().enforce_csrf(request)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"  # signed URLs of personal photos; never cache
        return response

    def get_exception_handler(self) -> Any:
        return errors.handle


class TryOnViewSet(TryOnAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A shopper's try-ons: create, list (newest first), read, delete, retry, cancel."""

    serializer_class = TryOnSerializer
    pagination_class = Pagination
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    throttle_scopes: ClassVar[dict[str, str]] = {"create": "create", "retry": "create"}

    def get_queryset(self) -> Any:
        return request_owner(self.request).scope(TryOn.objects.all()).order_by("-created_at")

    @extend_schema(
        request={
            **upload(TryOnCreateSerializer, "person_image"),
            "application/json": TryOnCreateFromPhotoSerializer,
            "application/x-www-form-urlencoded": TryOnCreateFromPhotoSerializer,
        },
        responses={
            202: TryOnSerializer,
            **error_responses({400: INVALID_TRYON, 404: ("not_found",), 429: OVER_A_LIMIT, 503: UNAVAILABLE}),
        },
        parameters=[LOCATION, RETRY_AFTER],
    )
    def create(self, request: Request) -> Response:
        data = TryOnCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job = services.create_tryon(
            person_image=values.get("person_image"),
            person_photo=values.get("person_photo"),
            consent=bool(values.get("consent") or values.get("person_photo")),
            product=values.get("product"),
            top_garment=values.get("top_garment"),
            bottom_garment=values.get("bottom_garment"),
            resolution=values.get("resolution"),
            restore_face=values.get("restore_face"),
            refine=values.get("refine"),
            gender=values.get("gender") or "",
            keep_own=bool(values.get("keep_own")),
            webhook=values.get("webhook"),
            **request_owner(request).fields(),
        )
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{job.public_id}/")
        return Response(
            self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
        )

    @extend_schema(responses={204: OpenApiResponse(description="The job and its files are deleted.")})
    def destroy(self, request: Request, id: UUID) -> Response:
        services.delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        parameters=[RETRY_AFTER],
        responses={
            202: TryOnSerializer,
            **error_responses(
                {400: ("InvalidParameter",), 409: ("not_retryable",), 429: OVER_A_LIMIT, 503: UNAVAILABLE}
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, id: UUID) -> Response:
        job = self.get_object()
        if not services.retry(job, owner=request_owner(request)):
            return errors.envelope("not_retryable", "", None, status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            200: TryOnSerializer,
            **error_responses(
                {
                    409: ("already_finished", "not_cancelable"),
                    502: ("ProviderUnavailable", "ProviderRejected", "ProviderError"),
                }
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, id: UUID) -> Response:
        job = self.get_object()
        if job.is_terminal:
            return errors.envelope("already_finished", "", None, status.HTTP_409_CONFLICT)
        if not services.cancel(job):
            return errors.envelope("not_cancelable", "", None, status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data)

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: ShareLinkSerializer, **error_responses({404: ("not_found",)})},
        description="The try-on's live share link; 404 when it is not shared.",
    )
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={
            200: OpenApiResponse(ShareLinkSerializer, description="Already shared: the same live link."),
            201: OpenApiResponse(ShareLinkSerializer, description="A new link, valid SHARE_TTL seconds."),
            **error_responses({409: ("not_shareable",)}),
        },
        description="Share the result picture (only the picture: never the person photo) at a public, "
        "expiring URL. Only a succeeded try-on whose picture is kept can be shared.",
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses={204: OpenApiResponse(description="Not shared any more: the link answers 410 Gone.")},
        description="Stop sharing: every live link of the try-on ends now (nothing to end is fine too).",
    )
    @action(detail=True, methods=["get", "post", "delete"])
    def share(self, request: Request, id: UUID) -> Response:
        job = self.get_object()  # the owner's only: anyone else's is a 404
        if request.method == "DELETE":
            sharing.revoke(job)
            return Response(status=status.HTTP_204_NO_CONTENT)
        context = {"request": request}
        if request.method == "GET":
            link = sharing.active_link(job) if sharing.shareable(job) else None
            if link is None:
                return errors.envelope("not_found", "", None, status.HTTP_404_NOT_FOUND)
            return Response(ShareLinkSerializer(link, context=context).data)
        if not sharing.shareable(job):
            return errors.envelope("not_shareable", "", None, status.HTTP_409_CONFLICT)
        link, created = sharing.share(job)
        return Response(
            ShareLinkSerializer(link, context=context).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PhotoViewSet(TryOnAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A shopper's saved photos (kept with consent, reusable across products)."""

    serializer_class = PhotoSerializer
    parser_classes = (MultiPartParser, FormParser)
    throttle_scopes: ClassVar[dict[str, str]] = {"create": "upload"}

    def get_queryset(self) -> Any:
        return request_owner(self.request).scope(PersonPhoto.objects.all()).order_by("-created_at")

    @extend_schema(
        request=upload(PhotoCreateSerializer, "image"),
        parameters=[RETRY_AFTER],
        responses={
            201: PhotoSerializer,
            **error_responses({400: INVALID_UPLOAD, 429: ("rate_limited",)}),
        },
    )
    def create(self, request: Request) -> Response:
        data = PhotoCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = services.save_photo(
            image=data.validated_data["image"],
            consent=data.validated_data["consent"],
            **request_owner(request).fields(),
        )
        return Response(self.get_serializer(photo).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: OpenApiResponse(description="The photo and its file are deleted.")})
    def destroy(self, request: Request, id: UUID) -> Response:
        services.delete_photo(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductGarmentsView(TryOnAPIMixin, ListAPIView):
    """The active garments of a product (what "Try it on" will send)."""

    serializer_class = GarmentSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        product = get_object_or_404(get_product_model(), pk=self.kwargs["product_id"])
        return Garment.objects.filter(product_id=product.pk, is_active=True).order_by("pk")
