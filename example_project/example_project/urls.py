from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tryon/", include("django_tryon.urls")),
    path("", include("shop.urls")),
]
