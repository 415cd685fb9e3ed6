"""Where files live: the storage alias, random upload paths, and signed expiring URLs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core import signing
from django.core.files.storage import Storage, storages
from django.db.models import FileField
from django.urls import reverse
from django.utils import timezone

from .conf import tryon_settings

SIGNING_SALT = "django_tryon.files.v2"
KNOWN_EXTENSIONS = {"jpg", "jpeg", "png", "bmp"}


def get_tryon_storage() -> Storage:
    """The storage named by ``TRYON["STORAGE"]`` (an alias in ``settings.STORAGES``)."""
    return storages[tryon_settings.STORAGE]


def read_bytes(file: Any) -> bytes:
    """The content of a stored file: a ``FieldFile``, or a name in the try-on storage.

    Raises ``OSError`` (``FileNotFoundError``) when the file is gone, ``ValueError`` for an empty field.
    """
    if isinstance(file, str):
        with get_tryon_storage().open(file, "rb") as fh:
            return fh.read()
    with file.open("rb") as fh:
        return fh.read()


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


#: Models whose files the signed view serves, by the one-letter code used in tokens.
SIGNED_MODELS = {"t": "TryOn", "p": "PersonPhoto", "g": "Garment"}


def sign_file(field_file: Any) -> str:
    """An opaque signed token for a model's file: which row and which field, never the storage path.

    The file is looked up when the token is used, so a deleted photo or result stops being served at
    once, and a leaked token names no path that a public bucket or web server could serve forever.
    """
    instance = field_file.instance
    code = next(c for c, name in SIGNED_MODELS.items() if type(instance).__name__ == name)
    ident = instance.public_id.hex if hasattr(instance, "public_id") else str(instance.pk)
    return signing.dumps([code, ident, field_file.field.name], salt=SIGNING_SALT, compress=True)


def file_for_token(token: str, max_age: float | None = None) -> Any:
    """The ``FieldFile`` a token names, or None when it is tampered, expired, or the file is gone."""
    from . import models

    ttl = tryon_settings.SIGNED_URL_TTL if max_age is None else max_age
    try:
        code, ident, field = signing.loads(token, salt=SIGNING_SALT, max_age=timedelta(seconds=ttl))
        model = getattr(models, SIGNED_MODELS[code])
        lookup = {"pk": int(ident)} if code == "g" else {"public_id": uuid.UUID(hex=ident)}
        if field not in {f.name for f in model._meta.get_fields() if isinstance(f, FileField)}:
            return None
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        return None
    instance = model.objects.filter(**lookup).only("pk", field).first()
    field_file = getattr(instance, field, None) if instance is not None else None
    return field_file or None


def signed_path(field_file: Any) -> str:
    """The site-relative URL of this app's file view for ``field_file``, valid ``SIGNED_URL_TTL`` seconds."""
    return reverse("django_tryon:file", kwargs={"token": sign_file(field_file)})


def public_signed_url(field_file: Any) -> str:
    """An absolute signed URL under ``TRYON["PUBLIC_BASE_URL"]`` that the provider can download."""
    base = tryon_settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{signed_path(field_file)}"


def presigns_urls(storage: Storage) -> bool:
    """Whether ``storage.url()`` gives presigned, expiring URLs, as the storage's own settings say.

    django-storages: S3 and Google Cloud with ``querystring_auth`` (S3 behind a ``custom_domain`` only with
    a ``cloudfront_signer``; Google Cloud not with the ``publicRead`` ACL), Azure with ``expiration_secs``.
    Any other storage (``FileSystemStorage``...) is taken to give plain URLs.
    """
    if getattr(storage, "querystring_auth", False):
        if getattr(storage, "custom_domain", None) and not getattr(storage, "cloudfront_signer", None):
            return False  # S3 behind a custom domain signs only with a CloudFront signer
        return (
            getattr(storage, "default_acl", None) != "publicRead"
        )  # Google Cloud leaves public objects unsigned
    return bool(getattr(storage, "expiration_secs", None))  # Azure: SAS URLs


def storage_absolute_url(name: str) -> str | None:
    """The storage's own URL for ``name`` when it is absolute (S3/OSS presigned), else None."""
    try:
        url = get_tryon_storage().url(name)
    except NotImplementedError:
        return None
    return url if url.startswith(("http://", "https://")) else None
