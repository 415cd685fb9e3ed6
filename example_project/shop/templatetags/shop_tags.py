from django import template

from django_tryon.storage import signed_path

register = template.Library()


@register.filter
def signed(field_file) -> str:
    """A signed, expiring URL for a stored file (person photos are never public)."""
    return signed_path(field_file) if field_file else ""
