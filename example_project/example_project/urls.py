from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tryon/", include("django_tryon.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language, for the language switcher
    path("", include("shop.urls")),
]
