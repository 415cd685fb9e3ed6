"""URLs: ``path("tryon/", include("django_tryon.urls"))``."""

from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from .funnel_views import funnel_events
from .share_views import share_image, share_page
from .views import signed_file

app_name = "django_tryon"

urlpatterns = [
    path("files/<str:token>/", signed_file, name="file"),
    path("api/", include("django_tryon.api.urls")),
    path("funnel/", funnel_events, name="funnel"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_tryon"]), name="jsi18n"),
    # A shared result picture: the public page (OpenGraph tags) and the picture itself.
    path("s/<str:token>/", share_page, name="share"),
    path("s/<str:token>/image", share_image, name="share-image"),
]
