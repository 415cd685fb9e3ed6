"""Catalogue pre-flight: check garment images against the provider's rules and the flat-lay rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .exceptions import TryOnValidationError
from .storage import read_bytes
from .validators import check_image

FIXES = {
    "InvalidInputLength": gettext_lazy(
        "Export the photo between 5 KB and 5 MB, with each side between 151 and 4096 pixels."
    ),
    "InvalidURL": gettext_lazy("Save the photo as JPEG or PNG."),
}


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str


def check_garment(garment: Any) -> list[Finding]:
    """What is wrong with a garment's image, and how to fix it (an empty list: ready for try-on)."""
    try:
        data = read_bytes(garment.image)
    except (OSError, ValueError):
        return [Finding(_("The image file is missing from storage."), _("Upload the garment photo again."))]
    try:
        check_image(data)
    except TryOnValidationError as err:
        return [Finding(err.message, str(FIXES.get(err.code, _("Upload another photo."))))]
    try:
        from .engine import analyze_garment
    except ImportError:
        return []  # the flat-lay rules need the engine extra
    try:
        analysis = analyze_garment(data)
    except ValueError:
        return [
            Finding(
                _("No garment could be separated from the background."),
                _("Photograph the garment flat on a plain, light background."),
            )
        ]
    findings = []
    if analysis.pieces > 1:
        findings.append(
            Finding(
                _("%(n)d separate garments are in the picture.") % {"n": analysis.pieces},
                _("Photograph one garment at a time."),
            )
        )
    if not analysis.background_clean:
        findings.append(Finding(_("The background is not plain."), _("Use a clean, evenly lit background.")))
    if analysis.fill_ratio < 0.15:
        findings.append(
            Finding(
                _("The garment is small in the frame (%(p)d%% of the picture).")
                % {"p": analysis.fill_ratio * 100},
                _("Crop the photo so the garment fills most of it."),
            )
        )
    slot = "bottom" if garment.kind == "bottom" else "top"
    seen = "bottom" if analysis.kind == "bottom" else "top"
    if slot != seen:
        labels = dict(type(garment).Kind.choices)
        findings.append(
            Finding(
                _("It looks like a %(seen)s but is marked as a %(kind)s.")
                % {
                    "seen": str(labels.get(analysis.kind, analysis.kind)).lower(),
                    "kind": str(labels.get(garment.kind, garment.kind)).lower(),
                },
                _("Check the garment's kind."),
            )
        )
    return findings
