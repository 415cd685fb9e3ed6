"""API routes (included by ``django_tryon.urls`` under ``api/``)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from .views import PhotoViewSet, ProductGarmentsView, TryOnViewSet

router = SimpleRouter()
router.register("tryons", TryOnViewSet, basename="tryon")
router.register("photos", PhotoViewSet, basename="photo")

urlpatterns = [
    path("products/<int:product_id>/garments/", ProductGarmentsView.as_view(), name="product-garments"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    *router.urls,
]
