"""API routes (included by ``django_tryon.urls`` under ``api/``)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .errors import not_found
from .schema import TryOnSchemaView
from .views import PhotoViewSet, ProductGarmentsView, TryOnViewSet

router = SimpleRouter(use_regex_path=False)  # path converters: the views' lookup_value_converter ("uuid")
router.register("tryons", TryOnViewSet, basename="tryon")
router.register("photos", PhotoViewSet, basename="photo")

urlpatterns = [
    path("products/<int:product_id>/garments/", ProductGarmentsView.as_view(), name="product-garments"),
    path("schema/", TryOnSchemaView.as_view(), name="schema"),
    *router.urls,
    # Last: any other URL under api/ ending in a slash (a malformed id, an unknown path) is the envelope's 404.
    re_path(r"^(?:[\s\S]*/)?$", not_found, name="not-found"),
]
