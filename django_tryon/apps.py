"""App configuration."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TryOnConfig(AppConfig):
    name = "django_tryon"
    label = "django_tryon"
    verbose_name = _("Virtual try-on")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .webhooks import connect_receivers as connect_webhooks

        connect_webhooks()

        from .funnel import connect_receivers as connect_funnel_receivers

        connect_funnel_receivers()
