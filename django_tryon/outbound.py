"""Outbound HTTP to addresses a merchant typed in (webhooks): refuses internal networks, pinned to the checked address.

The host is resolved once and every address it resolves to is checked (loopback, private, link-local,
unspecified, multicast, reserved and other not globally routable ranges, IPv4-mapped IPv6 included);
the connection then goes to the checked address itself, with the URL's host in ``Host`` and in TLS
(SNI and certificate check), so a DNS answer that changes between the check and the connect
("DNS rebinding") cannot point the request elsewhere. Redirects are never followed, the connect and
read times are bounded, and at most ``max_bytes`` of the answer are read. Headers are exactly the
caller's: no proxy from the environment, no cookie, no credential.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import certifi
import urllib3
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURLError(ValueError):
    """The URL may not be called: bad scheme, credentials in it, or a host on an internal network."""


@dataclass(frozen=True)
class OutboundResponse:
    """What came back: the status, the first bytes of the body, and the address that answered."""

    status: int
    body: bytes
    address: str
    location: str = ""


#: The refused kinds of address, checked in this order (Python counts loopback, link-local and reserved
#: ranges as private too, so the more precise name comes first).
REASONS = (
    ("is_unspecified", gettext_noop("unspecified address")),
    ("is_loopback", gettext_noop("loopback address")),
    ("is_link_local", gettext_noop("link-local address")),
    ("is_multicast", gettext_noop("multicast address")),
    ("is_reserved", gettext_noop("reserved address")),
    ("is_private", gettext_noop("private address")),
)
NOT_GLOBAL = gettext_noop("address that is not globally routable")


def ca_certs() -> str:
    """The CA bundle that certificates are checked against: the one ``requests`` uses (certifi's)."""
    return str(certifi.where())


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be called (a short English phrase), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        inner = forbidden_reason(address.ipv4_mapped)
        return f"IPv4-mapped {inner}" if inner else None
    for attribute, reason in REASONS:
        if getattr(address, attribute):
            return reason
    if not address.is_global:  # shared address space 100.64/10, documentation ranges, ...
        return NOT_GLOBAL
    return None


def _translated_reason(address: IPAddress) -> str:
    reason = forbidden_reason(address) or ""
    if reason.startswith("IPv4-mapped "):
        return _("IPv4-mapped %(reason)s") % {"reason": _(reason.removeprefix("IPv4-mapped "))}
    return _(reason)


def check_url(url: str, *, allow_private: bool, require_https: bool) -> SplitResult:
    """The parsed URL if its form may be called; raises ``UnsafeURLError`` otherwise (no DNS lookup here)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as err:
        raise UnsafeURLError(_("The URL is not valid.")) from err
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError(_("The URL must start with https:// (or http://)."))
    if require_https and parts.scheme != "https":
        raise UnsafeURLError(_("The URL must use https://."))
    if not parts.hostname:
        raise UnsafeURLError(_("The URL has no host."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError(_("The URL may not contain a user name or password."))
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return parts
    if not allow_private:
        _refuse_if_forbidden(parts.hostname, literal)
    return parts


def resolve(parts: SplitResult, *, allow_private: bool) -> list[IPAddress]:
    """Every address the URL's host resolves to, each checked; raises ``UnsafeURLError``."""
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise UnsafeURLError(_("The host %(host)s could not be resolved.") % {"host": host}) from err
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURLError(_("The host %(host)s could not be resolved.") % {"host": host})
    if not allow_private:
        for address in addresses:  # every one: a host with one public and one internal address is refused
            _refuse_if_forbidden(host, address)
    return addresses


def _refuse_if_forbidden(host: str, address: IPAddress) -> None:
    if not forbidden_reason(address):
        return
    reason = _translated_reason(address)
    if host == str(address):
        raise UnsafeURLError(
            _("%(address)s is a %(reason)s: refused.") % {"address": address, "reason": reason}
        )
    raise UnsafeURLError(
        _("%(host)s resolves to %(address)s, a %(reason)s: refused.")
        % {"host": host, "address": address, "reason": reason}
    )


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    require_https: bool,
    connect_timeout: float,
    read_timeout: float,
    max_bytes: int,
) -> OutboundResponse:
    """POST ``body`` to ``url`` with exactly ``headers``, connected to the address that was checked.

    Raises:
        UnsafeURLError: the URL, or an address its host resolves to, is refused.
        urllib3.exceptions.HTTPError: the connection failed or timed out.
    """
    parts = check_url(url, allow_private=allow_private, require_https=require_https)
    address = resolve(parts, allow_private=allow_private)[0]
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    host_header = f"[{host}]" if ":" in host else host
    if port != default_port:
        host_header = f"{host_header}:{port}"
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs(),
            server_hostname=host,  # SNI: the URL's host, not the address
            assert_hostname=host,  # the certificate must be the URL's host's
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False, maxsize=1)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            content = _read_capped(response, max_bytes, time.monotonic() + connect_timeout + read_timeout)
        finally:
            response.release_conn()
        return OutboundResponse(
            status=response.status,
            body=content,
            address=str(address),
            location=response.headers.get("Location", "") or "",
        )
    finally:
        pool.close()


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """At most ``max_bytes`` of the body, read until ``deadline`` (a trickling answer is cut off)."""
    content = b""
    while len(content) < max_bytes and time.monotonic() < deadline:
        chunk = response.read(min(8192, max_bytes - len(content)))
        if not chunk:
            break
        content += chunk
    return content
