"""Serializers: validate shoppers' input, and describe jobs, photos and garments."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import admission, precheck, webhooks
from ..messages import active_language, message_for
from ..models import Garment, PersonPhoto, TryOn, WebhookEndpoint, get_product_model
from ..owners import request_owner
from ..storage import signed_path


def _owned_photo(request: Any, public_id: Any) -> PersonPhoto:
    photo = request_owner(request).scope(PersonPhoto.objects.filter(public_id=public_id)).first()
    if photo is None:
        raise serializers.ValidationError({"person_photo": ["No such saved photo."]}, code="not_found")
    return photo


class PersonWarningSerializer(serializers.Serializer):
    """One finding of the person check on the photo, in the request's language."""

    code = serializers.CharField(
        help_text="The verdict: no_person, several_people, not_full_body, not_front_facing, "
        "too_dark or blurry."
    )
    message = serializers.CharField(help_text="What is wrong with the photo, for the shopper.")


class WarningsMixin:
    """``warnings``: the person check's findings on the photo (``TRYON["PERSON_CHECK"]`` "warn"); [] when fine."""

    @extend_schema_field(PersonWarningSerializer(many=True))
    def get_warnings(self, obj: Any) -> list[dict[str, str]]:
        return precheck.warnings(obj.person_check)


class TryOnCreateSerializer(serializers.Serializer):
    person_image = serializers.FileField(
        required=False, help_text="A full-body, front-facing photo (or person_photo)."
    )
    person_photo = serializers.UUIDField(
        required=False, help_text="The id of a saved photo (instead of person_image)."
    )
    consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required with person_image: the shopper agrees to the processing.",
    )
    product = serializers.IntegerField(required=False, help_text="Use this product's active garments.")
    top_garment = serializers.IntegerField(
        required=False, help_text="A garment id for the top slot (top or one-piece)."
    )
    bottom_garment = serializers.IntegerField(required=False, help_text="A garment id for the bottom slot.")
    resolution = serializers.ChoiceField(choices=TryOn.Resolution.choices, required=False)
    restore_face = serializers.BooleanField(required=False, default=None, allow_null=True)
    refine = serializers.BooleanField(
        required=False,
        default=None,
        allow_null=True,
        help_text="A second pass for a sharper, truer picture (needs gender; takes longer).",
    )
    gender = serializers.ChoiceField(
        choices=("woman", "man"),
        required=False,
        help_text="The person's gender, which the second pass needs.",
    )
    keep_own = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Trying on only a top (or a bottom): keep what you wear on the other half.",
    )
    webhook = serializers.SlugField(
        required=False,
        help_text="The name of one of your webhook endpoints (registered by the shop for your account): "
        "it gets this try-on's events too.",
    )

    def validate_webhook(self, value: str) -> WebhookEndpoint:
        endpoint = webhooks.endpoint_for_client(value, getattr(self.context["request"], "user", None))
        if endpoint is None:  # unknown, another client's and inactive look the same
            raise serializers.ValidationError(
                "No active webhook endpoint of yours has this name.", code="invalid_webhook"
            )
        return endpoint

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        request = self.context["request"]
        if data.get("person_image") is None and data.get("person_photo") is None:
            raise serializers.ValidationError(
                {"person_image": ["Upload a photo or choose a saved one."]}, code="InvalidParameter"
            )
        if data.get("person_image") is not None and not data.get("consent"):
            raise serializers.ValidationError(
                {"consent": ["Consent is required to process your photo."]}, code="consent_required"
            )
        if data.get("person_photo") is not None:
            data["person_photo"] = _owned_photo(request, data["person_photo"])
        if data.get("product") is not None:
            data["product"] = get_product_model()._default_manager.filter(pk=data["product"]).first()
            if data["product"] is None:
                raise serializers.ValidationError({"product": ["No such product."]}, code="not_found")
        for slot in ("top_garment", "bottom_garment"):
            if data.get(slot) is not None:
                data[slot] = Garment.objects.filter(pk=data[slot], is_active=True).first()
                if data[slot] is None:
                    raise serializers.ValidationError({slot: ["No such garment."]}, code="InvalidGarment")
        if data.get("product") is None and not (data.get("top_garment") or data.get("bottom_garment")):
            raise serializers.ValidationError(
                {"product": ["Choose a product or garments."]}, code="InvalidGarment"
            )
        return data


class TryOnSerializer(WarningsMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    warnings = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    elapsed_seconds = serializers.SerializerMethodField()
    result_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    model = serializers.CharField(source="model_name", read_only=True)

    class Meta:
        model = TryOn
        fields = (
            "id",
            "status",
            "product",
            "top_garment",
            "bottom_garment",
            "model",
            "resolution",
            "restore_face",
            "refine",
            "stage",
            "keep_own",
            "created_at",
            "finished_at",
            "queue_position",
            "eta_seconds",
            "elapsed_seconds",
            "result_url",
            "error",
            "warnings",
        )
        read_only_fields = fields

    def _info(self, job: TryOn) -> dict[str, Any]:
        # A per-response cache in the context: DRF keeps the view's dict, which the stubs type read-only.
        cache = cast(dict[str, Any], self.context).setdefault("_queue_info", {})
        if job.pk not in cache:
            cache[job.pk] = admission.queue_info(job)
        return cache[job.pk]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_queue_position(self, job: TryOn) -> int | None:
        return self._info(job)["queue_position"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_eta_seconds(self, job: TryOn) -> float | None:
        return self._info(job)["eta_seconds"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_elapsed_seconds(self, job: TryOn) -> float | None:
        return self._info(job)["elapsed_seconds"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_result_url(self, job: TryOn) -> str | None:
        """A signed URL of the result, valid SIGNED_URL_TTL seconds (only ever given to the owner)."""
        return signed_path(job.result_image) if job.has_result else None

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    )
    def get_error(self, job: TryOn) -> dict[str, str] | None:
        if job.status not in ("failed", "canceled") or not job.error_code:
            return None
        return {
            "code": job.error_code,
            "message": message_for(job.error_code, active_language(), job.error_message),
        }


class PhotoCreateSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="A full-body, front-facing photo of the shopper.")
    consent = serializers.BooleanField(help_text="The shopper agrees that the photo is kept and processed.")


class PhotoSerializer(WarningsMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    image_url = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = PersonPhoto
        fields = ("id", "created_at", "consent_at", "image_url", "warnings")
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, photo: PersonPhoto) -> str:
        return signed_path(photo.image)


class GarmentSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Garment
        fields = ("id", "kind", "image_url")
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, garment: Garment) -> str:
        return signed_path(garment.image)


class ShareLinkSerializer(serializers.Serializer):
    """A live share link of a try-on's result picture (``tryons/{id}/share/``)."""

    url = serializers.SerializerMethodField(help_text="The public page: the result picture only, for anyone.")
    image_url = serializers.SerializerMethodField(help_text="The shared picture itself (og:image).")
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(
        read_only=True, help_text="After this the page and the picture answer 410 Gone."
    )

    @extend_schema_field(serializers.URLField())
    def get_url(self, link: Any) -> str:
        from ..sharing import page_path

        return self._absolute(page_path(link))

    @extend_schema_field(serializers.URLField())
    def get_image_url(self, link: Any) -> str:
        from ..sharing import image_path

        return self._absolute(image_path(link))

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
