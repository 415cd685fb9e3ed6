"""Check a django-tryon webhook's X-Tryon-Signature header (standard library only)."""

import hashlib
import hmac
import time


def verify_tryon_webhook(body: bytes, signature_header: str, secret: str, tolerance: int = 300) -> bool:
    """True if ``signature_header`` signs the raw request ``body`` with the endpoint's ``secret``.

    The header is ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``; a timestamp more than
    ``tolerance`` seconds away from now is refused, so an old delivery cannot be replayed.
    """
    try:
        fields = [item.split("=", 1) for item in signature_header.split(",")]
        timestamp = int(next(value for key, value in fields if key.strip() == "t"))
    except (ValueError, StopIteration):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value.strip()) for key, value in fields if key.strip() == "v1")
