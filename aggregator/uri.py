"""Links as URIs: what a feed reader, a validator and an HTTP request line accept.

Sources give links as they were typed: with spaces, quotes, letters of any script
(IRIs) and host names such as ``bücher.de``. A browser encodes them before it asks;
a feed must carry them encoded, or readers and validators refuse it. :func:`as_uri`
does what a browser does: every character a URI cannot hold is percent-encoded as
UTF-8, a ``%`` that starts no escape becomes ``%25``, and a host name outside ASCII is
written as IDNA 2008 with UTS 46 mapping (``xn--…``), the form browsers resolve.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# What a URI may hold as it is: RFC 3986's unreserved and reserved characters, and the
# "%" of an escape. Anything else is percent-encoded.
_URI_CHARACTERS = "!#$%&'()*+,/:;=?@[]~"
_NOT_URI = re.compile(r"[^A-Za-z0-9._~!#$%&'()*+,/:;=?@\[\]-]|%(?![0-9A-Fa-f]{2})")
STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def as_uri(url: str, netloc: str) -> str | None:
    """``url``, whose authority (``urlsplit(url).netloc``) is ``netloc``, as a URI; a URI
    already is returned as it is. None when its host name is no name IDNA can write."""
    if _NOT_URI.search(url) is None:
        return url
    start = url.find(netloc) if netloc else -1
    head, tail = (url, "") if start < 0 else (url[:start], url[start + len(netloc) :])
    if netloc and not netloc.isascii():
        authority = _ascii_authority(netloc)
        if authority is None:
            return None
        head += authority
    else:
        head += netloc
    return quote(STRAY_PERCENT.sub("%25", head + tail), safe=_URI_CHARACTERS)


def _ascii_authority(netloc: str) -> str | None:
    """``user@host:port`` with the host in IDNA and the user percent-encoded (by the
    caller's quote); None when the host cannot be written so."""
    user, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        return None if not hostport.isascii() else netloc  # an IPv6 literal is ASCII
    host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host.isascii():
        import idna  # only for a host outside ASCII

        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    return f"{user}{at}{host}{colon}{port}"


# The user part of a web address: "user:password@" after the scheme, before the host.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", re.ASCII)


def without_credentials(url: str) -> str:
    """``url`` without its user name and password (``https://user:pw@host/`` is
    ``https://host/``): a source's address as a page, a feed or ``/healthz`` shows it
    to anyone (found by review: a feed's password was on every story page it told)."""
    return _USERINFO.sub(r"\1", url) if "@" in url else url


# A web address with a user part in an attribute of sanitised HTML (whose attribute
# values are in double quotes).
_USERINFO_IN_HTML = re.compile(r'(?<=")(https?://)[^/?#"\s]*@', re.IGNORECASE)


def without_credentials_in(html: str) -> str:
    """``html`` (sanitised) with every link's user name and password taken out, as
    :func:`without_credentials` takes them out of one address."""
    return _USERINFO_IN_HTML.sub(r"\1", html) if "@" in html else html
