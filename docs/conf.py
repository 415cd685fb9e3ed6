"""Sphinx configuration for the django-tryon documentation (plain Sphinx, no autodoc)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _read_version() -> str:
    """``__version__`` from django_tryon/__init__.py, read as text so Django is never imported."""
    text = (ROOT / "django_tryon" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("__version__ not found in django_tryon/__init__.py")
    return match.group(1)


project = "django-tryon"
author = "django-tryon contributors"
copyright = "django-tryon contributors"
release = _read_version()
version = ".".join(release.split(".")[:2])

extensions: list[str] = []
root_doc = "index"
exclude_patterns = ["_build"]
language = "en"
highlight_language = "python3"

html_theme = "alabaster"
html_title = f"django-tryon {release}"
html_static_path: list[str] = []
