"""The REST API for shoppers (Django REST framework), mounted under ``tryon/api/``."""
