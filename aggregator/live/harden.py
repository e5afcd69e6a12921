"""Defusing a feed document before any XML parser sees it.

A document type declaration can define entities: "billion laughs" nests them
so that a 110 kB file expands into gigabytes in feedparser's fallback parser,
and external entities (XXE) make a parser read local files or URLs. Feeds have
no business declaring either, so every internal DTD subset and every markup
declaration is removed before parsing; references to the entities they
declared are then left unexpanded.
"""

from __future__ import annotations

import re

# "<!DOCTYPE rss [ <!ENTITY …> … ]>": a DOCTYPE with an internal subset, where entities
# are declared. The subset may hold ">" inside quoted values, so it is matched up to "]>".
# Left unclosed, it runs to the end of the document: a pattern that had to find "]>" was
# tried again at every "<!DOCTYPE" and took minutes for 260 kB of them.
# A DOCTYPE that only names an external DTD ("<!DOCTYPE rss PUBLIC "-//Netscape…"") is
# kept: it declares nothing here, feedparser never fetches it, and it marks RSS 0.91.
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*+\[.*?(?:\]\s*>|\Z)", re.IGNORECASE | re.DOTALL)
# Stray declarations outside a DOCTYPE (malformed documents) are removed too (to the end
# when unclosed, for the same reason).
_DECLARATION = re.compile(rb"<!(?:ENTITY|ELEMENT|ATTLIST|NOTATION)\b[^>]*+(?:>|\Z)", re.IGNORECASE)


# Wide encodings, by byte-order mark or by how "<?" is spelt without one.
_WIDE = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)
_ENCODING_DECLARATION = re.compile(r"""(<\?xml[^>]*?)\s+encoding\s*=\s*["'][^"']*["']""")


def _narrow(data: bytes) -> bytes:
    """A UTF-16/32 document as UTF-8, so that the byte patterns below can see it."""
    for mark, codec in _WIDE:
        if data.startswith(mark):
            body = data[len(mark) :] if mark[0] in (0xFF, 0xFE) or mark[:2] == b"\x00\x00" else data
            text = body.decode(codec, errors="replace")
            return _ENCODING_DECLARATION.sub(r"\1", text, count=1).encode("utf-8")
    return data


def defuse(data: bytes) -> bytes:
    """``data`` without document type, entity or other markup declarations."""
    data = _narrow(data)
    if b"<!" not in data:
        return data
    return _DECLARATION.sub(b"", _DOCTYPE.sub(b"", data))


def looks_like_xml(data: bytes) -> bool:
    """Whether ``data`` starts like an XML document rather than plain text."""
    head = data[:512].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
    return head.startswith(b"<")
