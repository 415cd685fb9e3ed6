"""Share links: a public, expiring, revocable URL of one try-on's result picture, and nothing else.

The API (``POST``/``GET``/``DELETE tryons/{id}/share/``) and the public page (``s/<token>/``) both go
through these functions. A link shows the result picture only: never the person photo, the garment
snapshots, the owner or any other field of the job. Every request checks the link again (revoked,
expired, the job deleted, its result purged), so nothing a link once showed outlives its end.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import Enum

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .conf import tryon_settings
from .models import ShareLink, TryOn

#: Bytes of randomness in a token (256 bits, URL-safe base64: 43 characters).
TOKEN_BYTES = 32


class LinkState(Enum):
    """What a token names: a live link, one that has ended (410 Gone), or nothing (404)."""

    LIVE = "live"
    GONE = "gone"
    UNKNOWN = "unknown"


def shareable(job: TryOn) -> bool:
    """Whether ``job`` has a picture to share: succeeded, with its result still stored."""
    return job.has_result


def active_link(job: TryOn, *, now: datetime | None = None) -> ShareLink | None:
    """The job's live link (neither revoked nor expired), if any."""
    now = now or timezone.now()
    return (
        ShareLink.objects.filter(job=job, revoked_at__isnull=True, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )


def share(job: TryOn, *, now: datetime | None = None) -> tuple[ShareLink, bool]:
    """The job's live link, made now (``SHARE_TTL`` seconds) unless one exists; returns it and "created".

    The caller checks ownership and :func:`shareable` first. One live link per job: sharing again hands
    out the same URL until it is revoked or expires.
    """
    now = now or timezone.now()
    with transaction.atomic():
        TryOn.objects.select_for_update().filter(pk=job.pk).first()  # one link even for two clicks at once
        link = active_link(job, now=now)
        if link is not None:
            return link, False
        link = ShareLink.objects.create(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            job=job,
            expires_at=now + timedelta(seconds=int(tryon_settings.SHARE_TTL)),
        )
    return link, True


def revoke(job: TryOn, *, now: datetime | None = None) -> int:
    """End every live link of ``job`` now; returns how many were live."""
    now = now or timezone.now()
    return ShareLink.objects.filter(job=job, revoked_at__isnull=True, expires_at__gt=now).update(
        revoked_at=now
    )


def resolve(token: str, *, now: datetime | None = None) -> tuple[LinkState, ShareLink | None]:
    """What ``token`` names now: ``LIVE`` with its link, ``GONE`` (revoked, expired, result purged or the
    try-on no longer succeeded) or ``UNKNOWN`` (no such link; a deleted try-on takes its links along)."""
    now = now or timezone.now()
    if not token or len(token) > 64:
        return LinkState.UNKNOWN, None
    link = ShareLink.objects.select_related("job", "job__product").filter(token=token).first()
    if link is None:
        return LinkState.UNKNOWN, None
    if link.revoked_at is not None or link.expires_at <= now or not shareable(link.job):
        return LinkState.GONE, link
    return LinkState.LIVE, link


def page_path(link: ShareLink) -> str:
    """The site-relative URL of the link's public page."""
    return reverse("django_tryon:share", kwargs={"token": link.token})


def image_path(link: ShareLink) -> str:
    """The site-relative URL of the shared picture."""
    return reverse("django_tryon:share-image", kwargs={"token": link.token})
