"""Where files live: the storage alias, random upload paths, and signed expiring URLs."""

from __future__ import annotations

import uuid
from typing import Any

from django.core import signing
from django.core.files.storage import Storage, storages
from django.urls import reverse
from django.utils import timezone

from .conf import tryon_settings

SIGNING_SALT = "django_tryon.files"
KNOWN_EXTENSIONS = {"jpg", "jpeg", "png", "bmp"}


def get_tryon_storage() -> Storage:
    """The storage named by ``TRYON["STORAGE"]`` (an alias in ``settings.STORAGES``)."""
    return storages[tryon_settings.STORAGE]


def _random_path(folder: str, filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    ext = ext if ext in KNOWN_EXTENSIONS else "jpg"
    return f"tryon/{folder}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{ext}"


def person_upload_to(instance: Any, filename: str) -> str:
    """A random path for a person photo; the client's filename is never used (only its extension)."""
    return _random_path("persons", filename)


def garment_upload_to(instance: Any, filename: str) -> str:
    return _random_path("garments", filename)


def snapshot_upload_to(instance: Any, filename: str) -> str:
    """Copies of the garment images actually sent with a try-on."""
    return _random_path("sent", filename)


def result_upload_to(instance: Any, filename: str) -> str:
    return _random_path("results", filename)


def sign_name(name: str) -> str:
    """A signed token for a stored file name (the name itself is random and not listable)."""
    return signing.dumps({"n": name}, salt=SIGNING_SALT, compress=True)


def unsign_name(token: str, max_age: float | None = None) -> str:
    """The file name inside ``token``; raises ``signing.BadSignature`` when tampered or expired."""
    ttl = tryon_settings.SIGNED_URL_TTL if max_age is None else max_age
    return signing.loads(token, salt=SIGNING_SALT, max_age=ttl)["n"]


def signed_path(name: str) -> str:
    """The site-relative URL of this app's file view for ``name``, valid ``SIGNED_URL_TTL`` seconds."""
    return reverse("django_tryon:file", kwargs={"token": sign_name(name)})


def public_signed_url(name: str) -> str:
    """An absolute signed URL under ``TRYON["PUBLIC_BASE_URL"]`` that the provider can download."""
    base = tryon_settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{signed_path(name)}"


def storage_absolute_url(name: str) -> str | None:
    """The storage's own URL for ``name`` when it is absolute (S3/OSS presigned), else None."""
    try:
        url = get_tryon_storage().url(name)
    except NotImplementedError:
        return None
    return url if url.startswith(("http://", "https://")) else None
