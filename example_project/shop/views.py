"""The example shop: a catalogue and product pages with the "Try it on" widget, the shopper's try-ons.

The product page keeps a plain form as the no-JavaScript fallback of the widget.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from django_tryon import services
from django_tryon.exceptions import TryOnConfigurationError, TryOnValidationError
from django_tryon.messages import message_for
from django_tryon.models import TryOn

from .models import Product


class TryOnForm(forms.Form):
    person_image = forms.FileField(label=_("Your full-body photo"), help_text=_("Front-facing, one person, head to feet."))
    consent = forms.BooleanField(
        label=_("I agree that my photo is processed to generate this try-on and deleted after it."), required=True
    )


def _owner_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return services.owner_key_for_session(request.session.session_key)


def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.prefetch_related("tryon_garments")
    return render(request, "shop/product_list.html", {"products": products})


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk)
    garments = list(product.tryon_garments.filter(is_active=True))
    form = TryOnForm(request.POST or None, request.FILES or None)
    errors: dict[str, str] = {}
    if request.method == "POST" and form.is_valid():
        try:
            job = services.create_tryon(
                person_image=form.cleaned_data["person_image"],
                product=product,
                user=request.user,
                owner_key=_owner_key(request),
            )
        except TryOnValidationError as err:
            errors = {"en": err.message, "zh": err.messages()["zh-hans"], "code": err.code}
        except TryOnConfigurationError as err:
            errors = {"en": str(err), "zh": message_for("ConfigurationError", "zh-hans"), "code": "ConfigurationError"}
        else:
            return redirect("shop:tryon_detail", public_id=job.public_id)
    context = {
        "product": product,
        "garments": garments,
        "form": form,
        "errors": errors,
        "offline": settings.SHOP_USES_SANDBOX or settings.TRYON["BACKEND"].endswith("LocalBackend"),
        "recent": TryOn.objects.for_owner(request.user, _owner_key(request)).filter(product=product)[:5],
    }
    return render(request, "shop/product_detail.html", context)


def my_tryons(request: HttpRequest) -> HttpResponse:
    """The shopper's own try-ons, newest first, with their results."""
    jobs = list(TryOn.objects.for_owner(request.user, _owner_key(request)).select_related("product")[:50])
    language = get_language() or "en"
    for job in jobs:
        job.friendly_error = message_for(job.error_code, language, job.error_message) if job.error_code else ""
    return render(request, "shop/my_tryons.html", {"jobs": jobs})


def tryon_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    job = TryOn.objects.for_owner(request.user, _owner_key(request)).filter(public_id=public_id).first()
    if job is None:
        raise Http404("No such try-on")  # other shoppers' jobs do not exist for you
    if request.method == "POST" and request.POST.get("action") == "delete":
        product_id = job.product_id
        services.delete(job)
        return redirect("shop:product_detail", pk=product_id) if product_id else redirect("shop:product_list")
    context = {
        "job": job,
        "messages_by_language": {"en": message_for(job.error_code, "en", job.error_message), "zh": message_for(job.error_code, "zh-hans")}
        if job.error_code
        else {},
    }
    return render(request, "shop/tryon_detail.html", context)
