"""Schemathesis hooks of tests/test_openapi_contract.py (loaded through ``SCHEMATHESIS_HOOKS``).

Test data the schema cannot describe:

- uploads: the schema says a photo is a JPEG, PNG, BMP or WebP part; Schemathesis would send a 1×1
  picture of that type, which the server rightly refuses (each side must be over 150 px), so uploads
  carry a drawn person in the declared format (negative cases are generated as usual);
- ids: generated integers for products and garments are mapped onto the example shop's catalogue
  (``shop_seed``), and half of the generated saved-photo ids (and path product ids) onto ids that
  exist, so schema-valid requests reach the success paths (202, 201, and the links from them). Only
  values of the right type are mapped, so a negative case stays negative.
- webhook endpoint names: a generated ``webhook`` is dropped from schema-valid bodies (the names that exist
  are the shop's, per API client; the field is tested in tests/test_webhooks.py), and kept when it
  is not a string, so a negative case stays negative.

One kind of failure is dropped, for its reason (every other failure of every check fails the test):
``positive_data_acceptance`` of the coverage scenario "Multipart body with custom encoding".
Schemathesis 4 builds that one example from the registered file strategies above and fills the other
required parts with empty strings, ignoring the rest of the schema (``consent=""`` is not a boolean,
and the oneOf/anyOf rules are not applied), so the request is not schema-valid and its 400 is right.
Only a body of that shape (file parts and empty strings) is dropped, and each drop is printed.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image

from tests.images import person_photo

#: What shop_seed makes: products 1-4 (a tee, trousers, a dress, a tee with trousers), garments 1-5.
PRODUCTS = (1, 3, 4)  # those with a top or a one-piece: the second pass (refine) needs one
TOPS = (1, 4)  # tees; the dress (3) is tried on alone, so it cannot go with a bottom_garment
BOTTOMS = (2, 5)
#: The token user's saved photo (tests/test_openapi_contract.py makes it).
SAVED_PHOTO = "5a1b2c3d-0000-4000-8000-00000000c0de"
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/bmp": "BMP", "image/webp": "WEBP"}


def photo(media_type: str) -> bytes:
    """The drawn person (tests/images.py) in the format of ``media_type``."""
    if FORMATS[media_type] == "JPEG":
        return person_photo()
    buffer = io.BytesIO()
    Image.open(io.BytesIO(person_photo())).save(buffer, FORMATS[media_type])
    return buffer.getvalue()


for _media_type in FORMATS:
    schemathesis.openapi.media_type(_media_type, st.just(photo(_media_type)))


def _pick(value: Any, choices: tuple[int, ...]) -> Any:
    """An integer mapped onto ``choices`` (by its value, so a seeded run stays the same); others unchanged."""
    return choices[value % len(choices)] if type(value) is int else value


def _half(value: Any) -> bool:
    """True for half of the generated integers and UUIDs (decided by the value)."""
    if type(value) is int:
        return value % 2 == 0
    try:
        return isinstance(value, str) and uuid.UUID(value).int % 2 == 0
    except ValueError:
        return False


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    fields = getattr(body, "body", body)  # a multipart body with per-part content types wraps its dict
    if not isinstance(fields, dict):
        return body
    fields = dict(fields)
    for name, choices in (("product", PRODUCTS), ("top_garment", TOPS), ("bottom_garment", BOTTOMS)):
        if name in fields:
            fields[name] = _pick(fields[name], choices)
    if isinstance(fields.get("webhook"), str):
        del fields["webhook"]
    if "person_photo" in fields and _half(fields["person_photo"]):
        fields["person_photo"] = SAVED_PHOTO
    if fields is not body and hasattr(body, "body"):
        body.body = fields
        return body
    return fields


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: Any) -> Any:
    product_id = path_parameters.get("product_id") if isinstance(path_parameters, dict) else None
    if _half(product_id):
        return {**path_parameters, "product_id": _pick(product_id, PRODUCTS)}
    return path_parameters


def _error_code(response: Any) -> str | None:
    try:
        return json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", None) != "ST202":  # only "Schema-valid request rejected" is ever dropped
        return True
    phase = case.meta.phase if case.meta is not None else None
    if (
        phase is not None
        and phase.name == "coverage"
        and getattr(phase.data, "description", "") == "Multipart body with custom encoding"
        # the scenario's signature: file parts, and empty strings for the other required parts
        and isinstance(case.body, dict)
        and all(isinstance(value, bytes) or value == "" for value in case.body.values())
    ):
        print(
            f"filter_failure: dropped ST202 of {case.method} {case.path} (not schema-valid: "
            f"{sorted(case.body) if isinstance(case.body, dict) else case.body!r}, "
            f"answered {_error_code(response)})",
            file=sys.stderr,
        )
        return False
    return True
