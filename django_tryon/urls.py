"""URLs: ``path("tryon/", include("django_tryon.urls"))``."""

from django.urls import path

from .views import signed_file

app_name = "django_tryon"

urlpatterns = [
    path("files/<str:token>/", signed_file, name="file"),
]
