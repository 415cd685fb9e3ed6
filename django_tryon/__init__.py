"""django-tryon: virtual try-on jobs for Django shops."""

__version__ = "0.1.0.dev0"
