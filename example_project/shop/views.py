"""The example shop: a catalogue and product pages with the "Try it on" widget, the shopper's try-ons,
and a session cart that the widget's "Add to cart" posts to (``TRYON["ADD_TO_CART_URL"]``).

The product page keeps a plain form as the no-JavaScript fallback of the widget.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from django_tryon import services
from django_tryon.api.throttling import throttle_wait
from django_tryon.exceptions import TryOnConfigurationError, TryOnError, TryOnQuotaExceeded
from django_tryon.funnel import record_purchase
from django_tryon.messages import message_for
from django_tryon.models import TryOn
from django_tryon.owners import request_owner

from .models import Product


class TryOnForm(forms.Form):
    person_image = forms.FileField(
        label=_("Your full-body photo"), help_text=_("Front-facing, one person, head to feet.")
    )
    consent = forms.BooleanField(
        label=_("I agree that my photo is processed to generate this try-on and deleted after it."),
        required=True,
    )


def _mine(request: HttpRequest) -> Any:
    """The visitor's own try-ons (none for a visitor without a session: reads never create one)."""
    return request_owner(request).scope(TryOn.objects.all())


def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.prefetch_related("tryon_garments")
    return render(request, "shop/product_list.html", {"products": products})


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk)
    garments = list(product.tryon_garments.filter(is_active=True))
    form = TryOnForm(request.POST or None, request.FILES or None)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST" and form.is_valid():
        wait = throttle_wait(request, "create")  # the same per-address limit as the REST API
        try:
            if wait is not None:
                raise TryOnQuotaExceeded(code="rate_limited")
            job = services.create_tryon(
                person_image=form.cleaned_data["person_image"],
                product=product,
                **request_owner(request).fields(),
            )
        except (TryOnError, TryOnConfigurationError) as err:
            code = getattr(err, "code", "ConfigurationError")
            texts = (
                err.messages() if isinstance(err, TryOnError) else {}
            )  # a refused photo: the check's reason
            errors = {
                "en": texts.get("en") or message_for(code, "en", getattr(err, "message", "")),
                "zh": texts.get("zh-hans") or message_for(code, "zh-hans"),
                "code": code,
            }
            status = (
                429 if isinstance(err, TryOnQuotaExceeded) else 503 if code == "ConfigurationError" else 400
            )
        else:
            return redirect("shop:tryon_detail", public_id=job.public_id)
    elif request.method == "POST":
        status = 400
    context = {
        "product": product,
        "garments": garments,
        "form": form,
        "errors": errors,
        "offline": settings.SHOP_USES_SANDBOX or settings.TRYON["BACKEND"].endswith("LocalBackend"),
        "recent": _mine(request).filter(product=product)[:5],
    }
    return render(request, "shop/product_detail.html", context, status=status)


def my_tryons(request: HttpRequest) -> HttpResponse:
    """The shopper's own try-ons, newest first, with their results."""
    jobs = list(_mine(request).select_related("product")[:50])
    language = get_language() or "en"
    for job in jobs:
        job.friendly_error = (
            message_for(job.error_code, language, job.error_message) if job.error_code else ""
        )
    return render(request, "shop/my_tryons.html", {"jobs": jobs})


def tryon_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    job = _mine(request).filter(public_id=public_id).first()
    if job is None:
        raise Http404("No such try-on")  # other shoppers' jobs do not exist for you
    if request.method == "POST" and request.POST.get("action") == "delete":
        product_id = job.product_id
        services.delete(job)
        return redirect("shop:product_detail", pk=product_id) if product_id else redirect("shop:product_list")
    context = {
        "job": job,
        "messages_by_language": {
            "en": message_for(job.error_code, "en", job.error_message),
            "zh": message_for(job.error_code, "zh-hans"),
        }
        if job.error_code
        else {},
    }
    return render(request, "shop/tryon_detail.html", context)


#: The session key of the cart: a list of {"product": id, "quantity": n, "tried_on": bool}.
CART_KEY = "shop_cart"


def cart_lines(request: HttpRequest) -> list[dict[str, Any]]:
    """The visitor's cart (in the session; reads never create one)."""
    return list(request.session.get(CART_KEY, [])) if hasattr(request, "session") else []


def cart_count(request: HttpRequest) -> int:
    return sum(line["quantity"] for line in cart_lines(request))


@require_POST
def cart_add(request: HttpRequest) -> JsonResponse:
    """Add a product to the session cart: the widget's "Add to cart" (form fields product, garment, tryon).

    CSRF-checked like any form post (the widget sends the token). A try-on id is only noted when it is
    the visitor's own, so the cart shows "tried on" for real try-ons only.
    """
    raw = request.POST.get("product", "")
    product = Product.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    if product is None:
        return JsonResponse({"message": gettext("No such product.")}, status=400)
    tryon = request.POST.get("tryon", "")
    tried_on = _is_uuid(tryon) and _mine(request).filter(public_id=tryon).exists()
    lines = cart_lines(request)
    for line in lines:
        if line["product"] == product.pk:
            line["quantity"] += 1
            line["tried_on"] = line["tried_on"] or tried_on
            break
    else:
        lines.append({"product": product.pk, "quantity": 1, "tried_on": tried_on})
    request.session[CART_KEY] = lines
    count = sum(line["quantity"] for line in lines)
    return JsonResponse(
        {
            "message": gettext("%(product)s is in your cart.") % {"product": product.name},
            "count": count,
            "cart_url": reverse("shop:cart"),
        }
    )


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    """A demo order: empties the cart and tells the funnel (``record_purchase``) what was bought.

    A real shop calls ``django_tryon.funnel.record_purchase`` the same way from its own order code, once per
    order line; only lines bought after a try-on of the product in this session are counted.
    """
    lines = cart_lines(request)
    if not lines:
        return redirect("shop:cart")
    products = Product.objects.in_bulk([line["product"] for line in lines])
    for line in lines:
        if line["product"] in products:
            record_purchase(request, products[line["product"]], quantity=line["quantity"])
    del request.session[CART_KEY]
    return redirect(reverse("shop:cart") + "?ordered=1")


def cart(request: HttpRequest) -> HttpResponse:
    """The cart page: each product with its quantity, price and whether it was tried on."""
    lines = cart_lines(request)
    products = Product.objects.in_bulk([line["product"] for line in lines])
    rows = [
        {"product": products[line["product"]], "quantity": line["quantity"], "tried_on": line["tried_on"]}
        for line in lines
        if line["product"] in products
    ]
    for row in rows:
        row["subtotal"] = row["product"].price * row["quantity"]
    total = sum((row["subtotal"] for row in rows), Decimal("0"))
    ordered = request.GET.get("ordered") == "1" and not rows
    return render(request, "shop/cart.html", {"rows": rows, "total": total, "ordered": ordered})
