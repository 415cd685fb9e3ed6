"""Django admin: garments with pre-flight checks, try-on review with actions, and a dashboard.

Shoppers' photos and results are personal data: only staff with the ``view_tryon_images`` permission
see them; others see that an image exists. Every action goes through ``services``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import dashboard, preflight, services
from .exceptions import TryOnError
from .models import Garment, TryOn
from .storage import signed_path

IMAGE_PERMISSION = "django_tryon.view_tryon_images"
STATUS_COLOURS = {
    "queued": "#777",
    "submitting": "#2a6db0",
    "submitted": "#2a6db0",
    "running": "#b07d12",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "canceled": "#555",
}


def image_tag(field_file: Any, size: int = 80) -> str:
    if not field_file:
        return "—"
    return format_html(
        '<img src="{}" style="max-height:{}px;max-width:{}px;border-radius:3px" alt="" loading="lazy">',
        signed_path(field_file),
        size,
        size,
    )


def hidden_tag(field_file: Any) -> str:
    return (
        format_html(
            '<span title="{}">🔒 {}</span>', _("Needs the permission to see shoppers' images"), _("image")
        )
        if field_file
        else "—"
    )


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


class GarmentInline(admin.TabularInline):
    """Add to your ``ProductAdmin`` in one line: ``inlines = [GarmentInline]``."""

    model = Garment
    extra = 0
    fields = ("image", "preview", "kind", "is_active")
    readonly_fields = ("preview",)

    @admin.display(description=_("preview"))
    def preview(self, obj: Garment) -> str:
        return image_tag(obj.image)


@admin.register(Garment)
class GarmentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "preview", "kind", "is_active", "updated_at")
    list_filter = ("kind", "is_active")
    list_select_related = ("product",)
    readonly_fields = ("preview",)
    actions = ("preflight_selected",)

    @admin.display(description=_("preview"))
    def preview(self, obj: Garment) -> str:
        return image_tag(obj.image)

    @admin.action(description=_("Check selected garments against the provider's and flat-lay rules"))
    def preflight_selected(self, request: HttpRequest, queryset: Any) -> None:
        problems = 0
        for garment in queryset.select_related("product"):
            for finding in preflight.check_garment(garment):
                problems += 1
                self.message_user(request, f"{garment}: {finding.problem} {finding.fix}", messages.WARNING)
        if not problems:
            count = queryset.count()
            self.message_user(
                request,
                ngettext("%d garment is ready for try-on.", "%d garments are ready for try-on.", count)
                % count,
                messages.SUCCESS,
            )


@admin.register(TryOn)
class TryOnAdmin(admin.ModelAdmin):
    list_filter = ("status", "model_name", "error_code", "created_at")
    search_fields = ("public_id", "remote_id", "request_id")
    list_select_related = ("product", "user", "top_garment", "bottom_garment", "person_photo")
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = (
        "retry_selected",
        "refresh_selected",
        "cancel_selected",
        "rerun_plus_selected",
        "refine_selected",
        "delete_images_selected",
    )
    change_list_template = "admin/django_tryon/tryon/change_list.html"
    change_form_template = "admin/django_tryon/tryon/change_form.html"
    provider_fields = (
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

    def can_see_images(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMAGE_PERMISSION)

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        images = (
            ("person", "garments", "result")
            if self.can_see_images(request)
            else ("person_hidden", "garments", "result_hidden")
        )
        return (
            "public_id",
            *images,
            "status_badge",
            "product",
            "owner",
            "queue_wait",
            "generation_time",
            "model_name",
            "error_code",
            "created_at",
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        images = ("side_by_side",) if self.can_see_images(request) else ("images_hidden",)
        return (
            (None, {"fields": ("public_id", "status", "user", "product", "created_at", "finished_at")}),
            (_("Inputs and result"), {"fields": images}),
            (
                _("Request"),
                {
                    "fields": (
                        "top_garment",
                        "bottom_garment",
                        "backend",
                        "model_name",
                        "resolution",
                        "restore_face",
                        "person_check",
                    )
                },
            ),
            (_("Provider timeline"), {"fields": ("timeline",)}),
            (_("Provider"), {"fields": self.provider_fields, "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        model_fields = tuple(f.name for f in TryOn._meta.fields)
        return (*model_fields, "side_by_side", "images_hidden", "timeline")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # -- columns ---------------------------------------------------------------------------------
    @admin.display(description=_("person"))
    def person(self, obj: TryOn) -> str:
        return image_tag(obj.person_file, 60)

    @admin.display(description=_("person"))
    def person_hidden(self, obj: TryOn) -> str:
        return hidden_tag(obj.person_file)

    @admin.display(description=_("garments"))
    def garments(self, obj: TryOn) -> str:
        return format_html(
            "{} {}",
            image_tag(obj.top_garment.image if obj.top_garment else None, 50),
            image_tag(obj.bottom_garment.image if obj.bottom_garment else None, 50),
        )

    @admin.display(description=_("result"))
    def result(self, obj: TryOn) -> str:
        return image_tag(obj.result_image, 90)

    @admin.display(description=_("result"))
    def result_hidden(self, obj: TryOn) -> str:
        return hidden_tag(obj.result_image)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: TryOn) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
            STATUS_COLOURS.get(obj.status, "#777"),
            obj.get_status_display(),
        )

    @admin.display(description=_("owner"))
    def owner(self, obj: TryOn) -> str:
        return str(obj.user) if obj.user_id else (gettext("anonymous") if obj.owner_key else "—")

    @admin.display(description=_("queue wait"))
    def queue_wait(self, obj: TryOn) -> str:
        return _seconds(obj.queue_wait)

    @admin.display(description=_("generation time"))
    def generation_time(self, obj: TryOn) -> str:
        return _seconds(obj.generation_time)

    @admin.display(description=_("inputs and result"))
    def side_by_side(self, obj: TryOn) -> str:
        cells = zip((_("person"), _("top"), _("bottom"), _("result")), obj.image_files(), strict=True)
        figures = format_html_join(
            "",
            '<figure style="margin:0">{}<figcaption>{}</figcaption></figure>',
            ((image_tag(f, 360), label) for label, f in cells if f),
        )
        return format_html('<div style="display:flex;gap:16px;flex-wrap:wrap">{}</div>', figures or "—")

    @admin.display(description=_("inputs and result"))
    def images_hidden(self, obj: TryOn) -> str:
        count = sum(1 for f in obj.image_files() if f)
        return format_html(
            "🔒 {}",
            ngettext(
                "%d image, hidden: you need the permission to see shoppers' images.",
                "%d images, hidden: you need the permission to see shoppers' images.",
                count,
            )
            % count,
        )

    @admin.display(description=_("timeline"))
    def timeline(self, obj: TryOn) -> str:
        rows = [
            (_("created"), obj.created_at),
            (_("accepted by the provider"), obj.submitted_at),
            (_("provider: submitted"), obj.remote_submitted_at),
            (_("provider: scheduled"), obj.remote_scheduled_at),
            (_("provider: ended"), obj.remote_ended_at),
            (_("finished"), obj.finished_at),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "", "<tr><th>{}</th><td>{}</td></tr>", ((label, value or "—") for label, value in rows)
            ),
        )

    # -- actions ---------------------------------------------------------------------------------
    def _report(
        self, request: HttpRequest, n: int, singular: str, plural: str, level: int = messages.SUCCESS
    ) -> None:
        self.message_user(request, ngettext(singular, plural, n) % n, level if n else messages.WARNING)

    @admin.action(description=_("Retry selected try-ons"))
    def retry_selected(self, request: HttpRequest, queryset: Any) -> None:
        n = 0
        for job in queryset.filter(status__in=("failed", "canceled")):
            try:
                n += services.retry(job)  # the merchant's retry: only the site budget applies
            except TryOnError as err:
                self.message_user(request, f"{job.public_id}: {err.message}", messages.ERROR)
        self._report(request, n, "%d try-on was queued again.", "%d try-ons were queued again.")

    @admin.action(description=_("Refresh selected try-ons from the provider now"))
    def refresh_selected(self, request: HttpRequest, queryset: Any) -> None:
        jobs = list(queryset.filter(status__in=("submitted", "running")))
        for job in jobs:
            services.refresh(job)
        self._report(request, len(jobs), "%d try-on was refreshed.", "%d try-ons were refreshed.")

    @admin.action(description=_("Cancel selected try-ons"))
    def cancel_selected(self, request: HttpRequest, queryset: Any) -> None:
        n = 0
        for job in queryset.exclude(status__in=("succeeded", "failed", "canceled")):
            try:
                n += services.cancel(job)
            except TryOnError as err:
                self.message_user(request, f"{job.public_id}: {err.message}", messages.ERROR)
        self._report(request, n, "%d try-on was canceled.", "%d try-ons were canceled.")

    @admin.action(description=_("Re-run selected try-ons with aitryon-plus"))
    def rerun_plus_selected(self, request: HttpRequest, queryset: Any) -> None:
        n = 0
        for job in queryset:
            try:
                services.rerun(job, model="aitryon-plus")
                n += 1
            except TryOnError as err:
                self.message_user(request, f"{job.public_id}: {err.message}", messages.ERROR)
        self._report(
            request,
            n,
            "%d try-on was started again with aitryon-plus.",
            "%d try-ons were started again with aitryon-plus.",
        )

    @admin.action(description=_("Refine the pictures of selected try-ons (second pass)"))
    def refine_selected(self, request: HttpRequest, queryset: Any) -> TemplateResponse | None:
        """Asks woman or man for each picture (the refiner needs it), then starts one second pass each."""
        jobs = list(queryset.filter(status="succeeded", refine=False).exclude(result_image=""))
        if not jobs:
            self.message_user(
                request, _("Only finished try-ons that were not refined can be refined."), messages.WARNING
            )
            return None
        if "apply" not in request.POST:
            return TemplateResponse(
                request,
                "admin/django_tryon/tryon/refine.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Refine pictures"),
                    "opts": self.model._meta,
                    "rows": [
                        (job, signed_path(job.result_image) if self.can_see_images(request) else "")
                        for job in jobs
                    ],
                    "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "genders": (("woman", _("Woman")), ("man", _("Man"))),
                },
            )
        n = 0
        for job in jobs:
            gender = request.POST.get(f"gender-{job.pk}", "")
            if not gender:
                continue  # not answered: not refined
            try:
                services.refine_result(job, gender=gender)
                n += 1
            except TryOnError as err:
                self.message_user(request, f"{job.public_id}: {err.message}", messages.ERROR)
        self._report(request, n, "%d picture is being refined.", "%d pictures are being refined.")
        return None

    @admin.action(description=_("Delete the images of selected try-ons"))
    def delete_images_selected(self, request: HttpRequest, queryset: Any) -> None:
        n = sum(services.delete_images(job) for job in queryset)
        self._report(request, n, "%d image was deleted.", "%d images were deleted.")

    # -- dashboard ---------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "dashboard/", self.admin_site.admin_view(self.dashboard_view), name="django_tryon_dashboard"
            ),
            path(
                "dashboard/funnel.csv",
                self.admin_site.admin_view(self.funnel_csv_view),
                name="django_tryon_funnel_csv",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        _warn_about_refused_routes(self, request)
        return super().changelist_view(request, extra_context)

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        _warn_about_refused_routes(self, request)
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": _("Try-on dashboard"),
            "figures": dashboard.figures(),
            "funnel": dashboard.funnel_figures(dashboard.funnel_days(request.GET.get("days"))),
            "opts": self.model._meta,
            "changelist_url": reverse("admin:django_tryon_tryon_changelist"),
        }
        return TemplateResponse(request, "admin/django_tryon/dashboard.html", context)

    def funnel_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The dashboard's per-product funnel table as a CSV download (``?days=7`` or ``30``)."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        figures = dashboard.funnel_figures(dashboard.funnel_days(request.GET.get("days")))
        response = HttpResponse(dashboard.funnel_csv(figures), content_type="text/csv; charset=utf-8")
        name = f"tryon-funnel-{figures['first']:%Y%m%d}-{figures['last']:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "private, no-store"
        return response


def _warn_about_refused_routes(model_admin: admin.ModelAdmin, request: HttpRequest) -> None:
    """A banner for every route of the chain the provider refuses (and since when)."""
    from . import routing

    try:
        refused = routing.refused()
    except Exception:  # noqa: BLE001 - a misconfigured chain must not break the admin
        return
    for state in refused:
        model_admin.message_user(
            request,
            format_html(
                gettext(
                    "The provider refuses the route {} since {} ({}: {}). Try-ons go to the next route of "
                    "TRYON['BACKENDS']; fix the account or the model."
                ),
                state.name,
                date_format(localtime(state.refused_since), "DATETIME_FORMAT"),
                state.refused_code,
                state.refused_message[:200],
            ),
            messages.WARNING,
        )


from . import admin_webhooks  # noqa: E402, F401  (registers the webhook admin: issue 15, webhooks)
