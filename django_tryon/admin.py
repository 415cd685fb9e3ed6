"""Django admin for garments and try-on jobs. Actions go through ``services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import Garment, TryOn
from .storage import signed_path


def _thumb(field_file: Any, size: int = 80) -> str:
    if not field_file:
        return "—"
    return format_html(
        '<img src="{}" style="max-height:{}px;max-width:{}px" alt="">', signed_path(field_file.name), size, size
    )


class GarmentInline(admin.TabularInline):
    """Add to your ``ProductAdmin``: ``inlines = [GarmentInline]``."""

    model = Garment
    extra = 0
    fields = ("image", "preview", "kind", "is_active")
    readonly_fields = ("preview",)

    @admin.display(description=_("preview"))
    def preview(self, obj: Garment) -> str:
        return _thumb(obj.image)


@admin.register(Garment)
class GarmentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "preview", "kind", "is_active", "updated_at")
    list_filter = ("kind", "is_active")
    list_select_related = ("product",)
    readonly_fields = ("preview",)

    @admin.display(description=_("preview"))
    def preview(self, obj: Garment) -> str:
        return _thumb(obj.image)


@admin.register(TryOn)
class TryOnAdmin(admin.ModelAdmin):
    list_display = ("public_id", "person", "result", "status", "model_name", "error_code", "created_at")
    list_filter = ("status", "model_name", "error_code", "created_at")
    search_fields = ("public_id", "remote_id", "request_id")
    list_select_related = ("product", "user")
    date_hierarchy = "created_at"
    actions = ("retry_selected", "cancel_selected")
    readonly_fields = [f.name for f in TryOn._meta.fields] + ["person", "result"]
    fieldsets = (
        (None, {"fields": ("public_id", "status", "user", "product", "person", "result")}),
        (_("Request"), {"fields": ("top_garment", "bottom_garment", "backend", "model_name", "resolution", "restore_face")}),
        (
            _("Provider"),
            {
                "fields": (
                    "remote_id",
                    "request_id",
                    "remote_submitted_at",
                    "remote_scheduled_at",
                    "remote_ended_at",
                    "error_code",
                    "error_message",
                    "provider_error",
                    "attempts",
                    "poll_count",
                    "image_count",
                    "history",
                )
            },
        ),
        (_("Times"), {"fields": ("created_at", "submitted_at", "finished_at")}),
    )

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.display(description=_("person"))
    def person(self, obj: TryOn) -> str:
        return _thumb(obj.person_image)

    @admin.display(description=_("result"))
    def result(self, obj: TryOn) -> str:
        return _thumb(obj.result_image, 160)

    @admin.action(description=_("Retry selected try-ons"))
    def retry_selected(self, request: Any, queryset: Any) -> None:
        n = sum(services.retry(job) for job in queryset.filter(status__in=("failed", "canceled")))
        self.message_user(
            request, ngettext("%d try-on was queued again.", "%d try-ons were queued again.", n) % n, messages.SUCCESS
        )

    @admin.action(description=_("Cancel selected try-ons"))
    def cancel_selected(self, request: Any, queryset: Any) -> None:
        n = sum(services.cancel(job) for job in queryset.exclude(status__in=("succeeded", "failed", "canceled")))
        self.message_user(request, ngettext("%d try-on was canceled.", "%d try-ons were canceled.", n) % n)
