from django import template

from django_tryon.storage import signed_path

register = template.Library()


@register.filter
def signed(field_file) -> str:
    """A signed, expiring URL for a stored file (person photos are never public)."""
    return signed_path(field_file) if field_file else ""


@register.simple_tag(takes_context=True)
def cart_count(context) -> int:
    """How many items the visitor's session cart holds (the header's count)."""
    from shop.views import cart_count as count

    request = context.get("request")
    return count(request) if request is not None else 0
