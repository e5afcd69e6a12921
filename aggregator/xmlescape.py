"""Text and attribute values escaped for XML written by hand (the OPML files).

The same output as the standard library's ``xml.sax.saxutils.escape`` and ``quoteattr``,
without importing that module: it imports ``urllib.request`` (and with it
``http.client``, ``email`` and ``ssl``), about 40 ms that a run rendering its OPML
would spend for two replacements.
"""

from __future__ import annotations


def escape_text(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities: character data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote_attribute(value: str) -> str:
    """``value`` escaped and quoted, ready to follow ``name=``: in double quotes, or in
    single quotes when it holds a double quote and no single one. Line breaks and tabs
    become character references, which an attribute's normalisation would otherwise
    turn into spaces."""
    text = escape_text(value).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "&quot;") + '"'
