"""Django admin of the webhooks: endpoints (URL, secret, events), and deliveries with their attempt log.

The log is read-only; "Redeliver" goes through ``webhooks.redeliver``.
"""

from __future__ import annotations

from typing import Any

import django
from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import webhooks
from .models import WEBHOOK_EVENTS, WebhookAttempt, WebhookDelivery, WebhookEndpoint

#: A URL typed without a scheme is https:// (Django 5.0+; 4.2 always assumes http://, which the endpoint's
#: validator then refuses unless WEBHOOK_ALLOW_PRIVATE).
ASSUME_HTTPS: dict[str, Any] = {"assume_scheme": "https"} if django.VERSION >= (5, 0) else {}


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        **ASSUME_HTTPS,
        help_text=_("https:// address on the public internet that receives the events (POST, JSON)."),
    )
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=[(event, event) for event in WEBHOOK_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The events sent to this endpoint."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "secret", "events", "is_active", "send_all", "user")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "is_active", "send_all", "user", "event_list", "created_at")
    list_filter = ("is_active", "send_all")
    search_fields = ("name", "url")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("disabled_reason", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "url", "events", "is_active", "disabled_reason")}),
        (
            _("Signing"),
            {
                "fields": ("secret",),
                "description": _(
                    "Give this secret to the receiver: it checks the X-Tryon-Signature header of every "
                    "delivery with it. Replace it to rotate."
                ),
            },
        ),
        (_("Who gets events here"), {"fields": ("send_all", "user")}),
        (_("Dates"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    @admin.display(description=_("events"))
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events or [])

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if obj.is_active:
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration", "address", "status_code", "error", "response_excerpt")
    readonly_fields = fields
    ordering = ("number",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_id",
        "event",
        "endpoint",
        "job",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("state", "event", "endpoint", "created_at")
    search_fields = ("event_id", "public_id", "job__public_id")
    list_select_related = ("endpoint", "job")
    date_hierarchy = "created_at"
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver_selected",)
    fields = (
        "public_id",
        "event_id",
        "event",
        "endpoint",
        "job",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "give_up_at",
        "last_status",
        "last_error",
        "created_at",
        "delivered_at",
        "payload",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is read-only

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        """Redelivering needs the model's change permission (which the read-only form never uses)."""
        return request.user.has_perm("django_tryon.change_webhookdelivery")

    @admin.action(description=_("Redeliver selected webhook deliveries"), permissions=("redeliver",))
    def redeliver_selected(self, request: HttpRequest, queryset: Any) -> None:
        n = sum(webhooks.redeliver(delivery) for delivery in queryset)
        self.message_user(
            request,
            ngettext("%d delivery was queued again.", "%d deliveries were queued again.", n) % n,
            messages.SUCCESS,
        )
        skipped = queryset.count() - n
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d delivery is being sent right now and was left alone.",
                    "%d deliveries are being sent right now and were left alone.",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )
