"""Cleaning what a feed says before it is stored or republished. Trust nothing.

* HTML goes through an allowlist sanitiser (nh3, the Python binding of the Rust
  ``ammonia`` crate): only harmless tags and attributes survive, and only http,
  https and mailto URLs; relative URLs are resolved against the document's URL.
  feedparser's own sanitiser was tempting but lets entity-encoded
  ``javascript:`` hrefs through.
* Titles, authors and categories are plain text.
* Control characters and code points XML cannot carry are removed: one of them
  makes lxml refuse to write the whole output feed.
* Every field has a size cap, applied before the work as well as after it: HTML
  longer than ``MAX_HTML`` is cut, and markup nested deeper than
  ``nesting.MAX_DEPTH`` is flattened to its text (see ``nesting``), so that any
  field is cleaned in linear time (a megabyte of nested markup took 17 s).
"""

from __future__ import annotations

import functools
import html
import html.entities
import re
import threading
from collections.abc import Collection
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3

from aggregator.live.nesting import flatten
from aggregator.text import (
    MAX_TEXT,
    MAX_TITLE,
    NOT_XML,
    SANITISED_TAG,
    cap,
    composed,
    one_line,
    windows_1252_controls,
)
from aggregator.uri import STRAY_PERCENT, as_uri

# Caps, in characters, per field (MAX_TITLE and MAX_TEXT: aggregator.text). Longer input
# is cut to MAX_HTML before any work.
MAX_HTML = 200_000
MAX_URL = 2_000
MAX_NAME = 300
MAX_CATEGORIES = 50

URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_SCHEMES = frozenset({"http", "https"})

# The ASCII characters of aggregator.text.NOT_XML.
_ASCII_NOT_XML = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20)) + b"\x7f"

TAGS = frozenset(
    {
        "a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "blockquote", "br",
        "caption", "cite", "code", "dd", "del", "details", "div", "dl", "dt", "em",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hgroup", "hr", "i", "img", "ins", "kbd", "li", "nav", "ol", "p", "pre", "q",
        "s", "section", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
ATTRIBUTES = {
    # On every tag: the direction and language of its text (a right-to-left paragraph
    # shown left to right puts its full stop at the wrong end).
    "*": {"dir", "lang"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "details": {"open"},  # shown open, as its source showed it
    "q": {"cite"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
# Elements removed together with what they hold.
DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template"})
# <noscript> tags, taken out before sanitising: what they hold is then read as HTML, as
# a reader without scripts shows it (WordPress's lazy-loaded images keep the real <img>
# there, the one outside has only a placeholder). Kept, the sanitiser read it as text,
# and the markup showed as words; dropped with it, the image was lost (found by review).
_NOSCRIPT_TAG = re.compile(r"</?noscript(?=[\s/>])[^>]*+>", re.IGNORECASE)
# Elements that end a line or a block where they are: in a story's text each is a space,
# so that "<p>Summit ends</p><p>Pear growers…" does not read "Summit endsPear growers".
# (All of them are in TAGS, so the text read from the sanitised HTML breaks where the
# text of the raw fragment does.)
BREAKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hgroup", "hr", "li", "nav", "ol", "p", "pre", "section", "summary",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# A start or end tag of one of BREAKS, as the sanitiser writes it (lower case, attribute
# values in double quotes: see aggregator.text.SANITISED_TAG).
_BREAK_NAMES = "|".join(sorted(BREAKS, key=len, reverse=True))
_BREAK_TAG = re.compile(rf'</?(?:{_BREAK_NAMES})(?=[\s/>])[^>"]*+(?:"[^"]*+"[^>"]*+)*+>')


def strip_invalid(text: str) -> str:
    """``text`` without control characters and code points XML cannot hold; C1 controls
    are read as Windows-1252 first (aggregator.text.windows_1252_controls), as
    feedparser reads them, so that both parsers give the same text."""
    if text.isascii():  # the usual case: bytes.translate is several times quicker than re
        raw = text.encode("ascii")
        kept = raw.translate(None, _ASCII_NOT_XML)
        return text if len(kept) == len(raw) else kept.decode("ascii")
    return NOT_XML.sub("", windows_1252_controls(text))


# URLs that urljoin and urlsplit would hand back unchanged, so that the usual ones skip
# them (about 10 µs each): an absolute http(s) URL of a plain host, port, path, query
# and fragment (no userinfo, IPv6 literal, ";" parameters, empty "?" or "#", spaces or
# controls); and a path from the root ("/news/1.html", not "//host") with no "."
# or ".." segment, joined to such a base as its scheme and host followed by the path.
# tests/test_clean.py checks both agree with urljoin and urlsplit.
_PATH = r"(?:/[A-Za-z0-9._~!$&'()*+,=:@%-]*)*"
_QUERY = r"(?:\?[A-Za-z0-9._~!$&'()*+,=:@%/?-]+)?(?:#[A-Za-z0-9._~!$&'()*+,=:@%/?-]+)?"
_PLAIN_ABSOLUTE = re.compile(rf"(?P<origin>https?://[A-Za-z0-9.-]+(?::[0-9]+)?){_PATH}{_QUERY}")
_PLAIN_ROOTED = re.compile(rf"(?!//){_PATH}{_QUERY}")


@functools.lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """``scheme://host[:port]`` of a plain absolute base (see _PLAIN_ABSOLUTE), else None."""
    found = _PLAIN_ABSOLUTE.fullmatch(base)
    return None if found is None else found["origin"]


def _plain(url: str, base: str | None) -> str | None:
    """What urljoin gives for ``url`` when it is plain (see above), else None."""
    if "%" in url and STRAY_PERCENT.search(url) is not None:
        return None  # a "%" that starts no escape: made "%25" by the general path
    if _PLAIN_ABSOLUTE.fullmatch(url) is not None:
        return url
    if base and url[:1] == "/" and "/." not in url and _PLAIN_ROOTED.fullmatch(url):
        origin = _origin(base)
        if origin is not None:
            return origin + url
    return None


def join(base: str, url: str) -> str:
    """``urljoin(base, url)``, without its cost for plain URLs."""
    plain = _plain(url, base) if base else None
    if plain is not None:
        return plain
    try:
        return urljoin(base, url)
    except ValueError:  # "http://[": not a URL; safe_url then refuses it
        return url


def safe_url(
    url: str | None, base: str | None = None, schemes: frozenset[str] = LINK_SCHEMES
) -> str | None:
    """An absolute URL with an allowed scheme, or None."""
    if not url or len(url) > 4 * MAX_URL:  # a little slack for spaces and controls
        return None
    if (plain := _plain(url, base)) is not None:
        scheme = plain[: plain.find(":")]
        return plain if scheme in schemes and len(plain) <= MAX_URL else None
    url = strip_invalid(url).strip()
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:  # a broken IPv6 host ("http://[", "https://a]b/"): not a URL
        return None
    if parts.scheme.lower() not in schemes or (
        parts.scheme.lower() != "mailto" and not parts.netloc
    ):
        return None
    uri = as_uri(url, parts.netloc)  # spaces, quotes, IRI letters, hosts: see uri
    if uri is None or len(uri) > MAX_URL:
        return None
    return uri


# nh3's arguments, built once (nh3 copies them; nothing changes them).
_TAGS = set(TAGS)
_BREAKS = set(BREAKS)
_DROP = set(DROP_WITH_CONTENT)
_ATTRIBUTES = {tag: set(names) for tag, names in ATTRIBUTES.items()}
_URL_SCHEMES = set(URL_SCHEMES)
_REL = "noopener noreferrer nofollow"


# The base URL the sanitiser resolves relative URLs against, for the call under way in
# this thread (the sanitiser calls back in the thread that called it).
_base = threading.local()


def _resolve(url: str) -> str | None:
    return safe_url(url, _base.url, URL_SCHEMES)


@functools.cache
def _cleaners() -> tuple[nh3.Cleaner, nh3.Cleaner]:
    """The sanitiser, configured once: with a base URL to resolve against, and without
    one (relative URLs dropped). Given its settings on every call, nh3 converts them
    each time: three quarters of a short summary's cleaning."""
    settings: dict[str, Any] = {
        "tags": _TAGS,
        "clean_content_tags": _DROP,
        "attributes": _ATTRIBUTES,
        "url_schemes": _URL_SCHEMES,
        "link_rel": _REL,
        "strip_comments": True,
    }
    return nh3.Cleaner(url_relative=_resolve, **settings), nh3.Cleaner(
        url_relative="deny", **settings
    )


def _clean(html: str, base: str | None) -> str:
    resolving, denying = _cleaners()
    if base:
        _base.url = base
        cleaned = resolving.clean(html)
    else:
        cleaned = denying.clean(html)
    if "<img>" in cleaned:  # an image left with no source (a placeholder's): nothing
        cleaned = cleaned.replace("<img>", "")
    # Character references decode to control characters too ("&#x1;"): strip them.
    return strip_invalid(cleaned)


# Simple markup: what most feeds' summaries are ("<p>Text <a href=…>more</a></p>"). It is
# sanitised here, in one pass that also reads its text, to exactly what the sanitiser
# writes (nh3's HTML parser and serialiser; tests/test_clean_shortcuts.py compares the
# two on every fragment of the tests and on random ones), and only when nothing in it
# could make the HTML parser build another tree than its tags say: a few tags, each
# closed in order; blocks only where no paragraph or inline element is open; no link in
# a link; attribute values in double quotes, with no reference but "&amp;"; character
# references only whole and named or numbered plainly; links to a plain http(s)
# address or a path. Anything else (a comment, a stray "<", an unclosed paragraph, an
# unknown tag) goes to the sanitiser.
_SIMPLE_BLOCKS = frozenset({"p", "div"})
_SIMPLE_INLINE = frozenset({"a", "b", "i", "em", "strong", "span", "code", "small", "sub", "sup"})
_SPACE = "[ \t\n\f]"
# A tag (split on: its end or not, name, attributes, and "/" before its ">"), and a
# character reference in the text between tags.
_SIMPLE_TAG = re.compile(
    rf"<(/?)([A-Za-z][A-Za-z0-9]*)((?:{_SPACE}+[A-Za-z][A-Za-z0-9-]*=\"(?:[^\"<&]|&amp;)*\")*)"
    rf"{_SPACE}*(/?)>"
)
_REFERENCE = re.compile(r"&(?:(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)?")
_SIMPLE_ATTRIBUTE = re.compile(rf'{_SPACE}+([A-Za-z][A-Za-z0-9-]*)="([^"]*)"')
# An absolute address the sanitiser keeps as written: http(s), a host name of plain
# labels ending in one that starts with a letter (no IPv4 address, no punycode to
# check), a port of at most five digits, then _PATH and _QUERY's characters.
_LABEL = r"(?![Xx][Nn]--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIMPLE_ADDRESS = re.compile(
    rf"[Hh][Tt][Tt][Pp][Ss]?://(?:{_LABEL}\.)*(?![Xx][Nn]--)[A-Za-z][A-Za-z0-9-]*"
    rf"(?::(?P<port>[0-9]{{1,5}}))?{_PATH}{_QUERY}"
)


def _escaped_text(text: str) -> str:
    """Text as the sanitiser's serialiser writes it. (str.translate with a table of
    strings looks each character up: several times slower than four searches.)"""
    if ">" in text or "\xa0" in text or "&" in text or "<" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("\xa0", "&nbsp;")
    return text


def _escaped_value(value: str) -> str:
    """An attribute's value as the sanitiser's serialiser writes it: "<" and ">" too
    (found by review: a closer's pattern read "News > Summit" as the tag's end)."""
    if "&" in value or '"' in value or "\xa0" in value or ">" in value or "<" in value:
        value = value.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")
        return value.replace("<", "&lt;").replace(">", "&gt;")
    return value


def _reference(name: str) -> str | None:
    """The character(s) a whole reference (``&name;``) stands for, as the HTML parser
    reads it, or None when it is not plainly one (unknown, or a number the parser
    replaces or reports: controls, surrogates, non-characters)."""
    if name[0] != "#":
        return html.entities.html5.get(name + ";")
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    if (
        code < 0x20
        or 0x7F <= code < 0xA0
        or 0xD800 <= code < 0xE000
        or 0xFDD0 <= code <= 0xFDEF
        or code > 0x10FFFF
        or (code & 0xFFFE) == 0xFFFE
    ):
        return None
    return chr(code)


def _referenced(words: str) -> str | None:
    """Text with its character references read (see _reference); None when one is not
    plainly read, or an "&" starts none."""
    parts = _REFERENCE.split(words)
    for index in range(1, len(parts), 2):
        name = parts[index]
        character = _reference(name) if name is not None else None
        if character is None:
            return None
        parts[index] = character
    return "".join(parts)


def _simple_markup(fragment: str, base: str | None) -> tuple[str, str] | None:
    """What :func:`_clean` gives for a bounded fragment of simple markup (see above),
    and its text as :func:`_readable` reads that (without a closer: when one may be
    there, it is read so); None when the fragment is not simple markup."""
    if "\r" in fragment or fragment[:1] == "\ufeff":  # (the parser makes every CR LF
        return None  # and CR a LF, and drops a byte order mark that starts the text)
    out: list[str] = []
    text: list[str] = []
    stack: list[str] = []
    pieces = _SIMPLE_TAG.split(fragment)  # text, then each tag's four parts and text
    for index in range(0, len(pieces), 5):
        words = pieces[index]
        if words:
            if "<" in words:
                return None  # not a tag read here
            if "&" in words:
                words = _referenced(words)
                if words is None:
                    return None
            out.append(_escaped_text(words))
            text.append(words)
        if index + 1 == len(pieces):
            break
        closing, name, attributes, void = pieces[index + 1 : index + 5]
        name = name.lower()
        if closing:
            if attributes or void or not stack or stack[-1] != name:
                return None
            stack.pop()
            out.append(f"</{name}>")
            if name in _SIMPLE_BLOCKS:
                text.append(" ")
            continue
        if name == "br":
            if attributes:
                return None
            out.append("<br>")
            text.append(" ")
            continue
        if void:
            return None  # "<p/>" opens a paragraph
        if name in _SIMPLE_BLOCKS:
            for open_ in stack:
                if open_ != "div":
                    return None
            text.append(" ")
        elif name not in _SIMPLE_INLINE or (name == "a" and "a" in stack):
            return None
        stack.append(name)
        kept = _simple_attributes(name, attributes, base) if attributes else ""
        if kept is None:
            return None
        out.append(f'<{name}{kept} rel="{_REL}">' if name == "a" else f"<{name}{kept}>")
    if stack:
        return None
    cleaned = "".join(out)
    if len(cleaned) > MAX_HTML:
        return None
    start = max(0, len(cleaned) - CLOSER_REACH)
    if any(cleaned.find(word, start) >= 0 for word in _CLOSER_WORDS):
        return cleaned, _readable(cleaned, closing=True)
    return cleaned, "".join(text)


def _simple_attributes(name: str, attributes: str, base: str | None) -> str | None:
    """The attributes the sanitiser keeps of a simple tag's, as it writes them; None
    when one is not plainly read (a name twice, a reference, an address not plain)."""
    allowed: Collection[str] = ATTRIBUTES.get(name, ())
    seen: set[str] = set()
    kept = []
    for attribute, written in _SIMPLE_ATTRIBUTE.findall(attributes):
        attribute = attribute.lower()
        value = written.replace("&amp;", "&") if "&" in written else written
        if attribute in seen:
            return None
        seen.add(attribute)
        if attribute not in allowed and attribute not in ATTRIBUTES["*"]:
            continue
        if attribute in ("href", "cite"):
            if value[:1] == "/":
                resolved = safe_url(value, base, URL_SCHEMES) if base else None
                if resolved is None:
                    continue  # the sanitiser drops what it cannot resolve
                value = resolved
            else:
                address = _SIMPLE_ADDRESS.fullmatch(value)
                port = address["port"] if address is not None else None
                if address is None or (port is not None and int(port) > 65535):
                    return None
        kept.append(f' {attribute}="{_escaped_value(value)}"')
    return "".join(kept)


def _sanitized(fragment: str, base: str | None) -> tuple[str, bool]:
    """The sanitised HTML, and whether it is the whole of one sanitiser pass over the
    fragment (not cut because it grew past the cap)."""
    # (Not the simple way, which reads the text too: nh3 alone is quicker for the HTML.)
    return _by_sanitiser(_bounded(fragment), base)


def _by_sanitiser(bounded: str, base: str | None) -> tuple[str, bool]:
    """:func:`_sanitized` of a bounded fragment, by the sanitiser itself."""
    cleaned = _clean(bounded, base)
    if len(cleaned) <= MAX_HTML:
        return cleaned, True
    # Grown past the cap (every link gains a rel attribute, URLs are made absolute):
    # its first three quarters, cleaned again to close what the cut left open.
    cleaned = _clean(cleaned[: MAX_HTML * 3 // 4], base)
    return (cleaned if len(cleaned) <= MAX_HTML else ""), False


def sanitize_html(fragment: str, base: str | None = None) -> str:
    """Allowlisted HTML; relative URLs resolved against ``base`` (or dropped without one)."""
    return _sanitized(fragment, base)[0]


def sanitized_with_text(fragment: str, base: str | None = None) -> tuple[str, str]:
    """``sanitize_html(fragment, base)`` and ``html_to_text(fragment)``, in one sanitiser
    pass: the text is read from the sanitised HTML. Both passes parse the same bounded
    fragment into the same tree and drop the same elements with their content; they
    differ only in the tags and attributes they write around the same text, which is
    escaped the same way. tests/test_clean_shortcuts.py compares the two derivations.
    """
    bounded = _bounded(fragment)
    simple = _simple_markup(bounded, base)
    if simple is not None:
        return simple[0], _text(strip_invalid(simple[1]))
    cleaned, whole = _by_sanitiser(bounded, base)
    if not whole:  # cut: its text is no longer all of the fragment's
        return cleaned, html_to_text(fragment, summary=True)
    return cleaned, _text(strip_invalid(_readable(cleaned, closing=True)))


# Text wholly wrapped in a CDATA section, then read as HTML (a feed that escapes what it
# already wrapped: "&lt;![CDATA[Headline]]&gt;"): HTML takes the section for a comment,
# and the text was lost (found by review: the headline gone, the summary shown instead).
# Only the whole text: "How to use <![CDATA[ in XML" is about CDATA, and stays.
_WRAPPED = re.compile(r"\s*<!\[CDATA\[((?:[^\]]|\](?!\]>))*)\]\]>\s*")


def _unwrapped(text: str) -> str:
    """``text`` without the CDATA marks that wrap all of it, its content as it is."""
    if text.lstrip().startswith("<![CDATA[") and (whole := _WRAPPED.fullmatch(text)):
        return whole[1]
    return text


def _bounded(fragment: str) -> str:
    """At most MAX_HTML characters of ``fragment``, nested at most nesting.MAX_DEPTH deep
    (a tag the cut leaves open is left out: its start would be read as text), without
    CDATA marks (:func:`_unwrapped`)."""
    cut = _unwrapped(fragment[:MAX_HTML])
    if len(fragment) > MAX_HTML and cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if _NOSCRIPT_TAG.search(cut):
        cut = _NOSCRIPT_TAG.sub("", cut)
    return flatten(strip_invalid(cut))


def html_to_text(fragment: str, *, summary: bool = False) -> str:
    """The text of an HTML fragment on one line, as :func:`_readable` reads it: a space
    where a line or block ends (BREAKS), layout whitespace collapsed
    (aggregator.text.one_line); a ``summary``'s without its closing "Read more" link."""
    text = nh3.clean(
        _bounded(fragment),
        tags=_TEXT_TAGS,
        clean_content_tags=_DROP,
        attributes=_TEXT_ATTRIBUTES,
        strip_comments=True,
    )
    return _text(strip_invalid(_readable(text, closing=summary)))


# What html_to_text keeps for _readable to read: the BREAKS, and the elements whose
# text reads otherwise than as it is (struck text, quotations, images' alternatives).
_TEXT_TAGS = _BREAKS | {"del", "s", "q", "img", "a"}
_TEXT_ATTRIBUTES = {"img": {"alt"}}
# A <del> or <s> element (of the sanitiser's output: well formed, lower case, attribute
# values in double quotes) holding no other one: struck text, removed with it.
_STRUCK = re.compile(r"<(?:del|s)(?=[\s>])[^>]*+>(?:[^<]++|<(?!/?(?:del|s)[\s>]))*+</(?:del|s)>")
_QUOTE_START = re.compile(r"<q(?=[\s>])[^>]*+>")
_IMAGE = re.compile(r'<img(?=[\s/>])[^>"]*+(?:"[^"]*+"[^>"]*+)*+>')
_ALT = re.compile(r'\salt="([^"]*+)"')


def _readable(sanitised: str, *, closing: bool = False) -> str:
    """The text a person reads in sanitised HTML: struck text (``<del>``, ``<s>``) left
    out, a quotation (``<q>``) in quotation marks, an image by its alternative text (an
    emoji a blog wrote as an image), a space where a line or block ends (BREAKS), other
    tags removed, references decoded. (In a plain-text summary, "The minister
    <del>resigned</del> <ins>was dismissed</ins>" read "resigned was dismissed".)
    ``closing``: a summary's, without its closing link (_CLOSING_LINK)."""
    text = sanitised
    if "<del" in text or "<s" in text:
        while (left := _STRUCK.sub("", text)) != text:  # the innermost first
            text = left
    if "<q" in text:
        text = _QUOTE_START.sub("\u201c", text).replace("</q>", "\u201d")
    if "<img" in text:
        text = _IMAGE.sub(_image_text, text)
    if closing:  # looked for in the end only (a closer is short), where its words are
        start = max(0, len(text) - CLOSER_REACH)
        if any(text.find(word, start) >= 0 for word in _CLOSER_WORDS) and (
            found := _CLOSING_LINK.search(text, start)
        ):
            text = text[: found.start()]
    return html.unescape(SANITISED_TAG.sub("", _BREAK_TAG.sub(" ", text)))


def _image_text(image: re.Match[str]) -> str:
    """An image read as a character is its alternative text (an emoji a blog drew as an
    image: "🚀", ":-)"); a photo's description is not what the story's text says
    (found by review: "File photo: NATO-Ukraine Council, Vilnius" ran into the first
    sentence, and put a story on climate in the Ukraine feed)."""
    alt = _ALT.search(image.group())
    if alt is None:
        return ""
    text = html.unescape(alt.group(1)).strip()
    if len(text) <= 2 or not any(c.isalnum() for c in text):
        return alt.group(1)
    return " "


# A summary's closing link, the whole of its element ("<a …>Read more »</a>", "<p>Continue
# reading →</p>"), at its very end: not what the story says (found by review: kept at
# the end of a live feed's summaries). Only as an element of its own: words in running
# text ("…and Read More") and titles are left as they are.
_CLOSER_TAGS = r"(?:a|p|div|span|strong|em|b|i)"
CLOSER_REACH = 400  # characters from the end of a summary's HTML where its closer is
_CLOSING_LINK = re.compile(
    rf"(?:<{_CLOSER_TAGS}(?=[\s>])[^>]*+>\s*)+(?:\[\s*)?(?:Read [Mm]ore|Read the (?:[Ff]ull )?"
    r"(?:[Ss]tory|[Aa]rticle|[Pp]ost)|Continue [Rr]eading)"
    r"(?:\s*(?:[»›→….]|&raquo;|&rarr;|&hellip;|&#8230;|&#187;))*(?:\s*\])?"
    rf"\s*(?:</{_CLOSER_TAGS}>\s*)+$"
)
# Words every closer holds, as _CLOSING_LINK spells them: where neither is, the pattern
# is not tried (it would be tried at every position: 12 µs of a summary's 57 µs).
_CLOSER_WORDS = ("Read ", "Continue ")


def plain(text: str | None, limit: int = MAX_TITLE, *, is_html: bool = False) -> str:
    """One line of plain text: tags removed when it was HTML, whitespace collapsed, capped."""
    if not text:
        return ""
    text = text[:MAX_HTML]
    value = html_to_text(text) if is_html else _text(strip_invalid(text))
    return cap(strip_invalid(value), limit)


def _text(text: str) -> str:
    """Plain text as stored: on one line, composed (NFC: aggregator.text.composed). HTML
    and URLs are left as written: a link must keep its bytes."""
    return composed(one_line(text))


def text_as_html(text: str) -> str:
    """Plain text as HTML that shows the same lines: each line break a ``<br>`` (so a
    blank line between paragraphs is two)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return html.escape(lines).replace("\n", "<br>")


def text_summary(text: str) -> str:
    return cap(text, MAX_TEXT)


def title(text: str | None, *, is_html: bool | None = None) -> str:
    """A title as plain text: as HTML when its feed declares it so (an Atom title of type
    html), as text when declared text; an RSS title says neither, and is read as HTML
    only when it holds HTML (:func:`looks_like_html`): "C++ vector<int>" is text."""
    if not text:
        return ""
    if is_html is None:
        return _guessed(text, MAX_TITLE)
    return plain(text, MAX_TITLE, is_html=is_html)


def name(text: str | None, *, is_html: bool | None = None) -> str | None:
    """An author's name as plain text (read as :func:`title` reads a title):
    "Ann <ann@example.org>" keeps its address."""
    if not text:
        return None
    value = _guessed(text, MAX_NAME) if is_html is None else plain(text, MAX_NAME, is_html=is_html)
    return value or None


# The HTML standard's elements, and the old ones feeds still carry: text of no declared
# type holds HTML only when every tag in it names one of these (see looks_like_html).
HTML_ELEMENTS = frozenset(
    {
        "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "base",
        "basefont", "bdi", "bdo", "big", "blink", "blockquote", "body", "br", "button",
        "canvas", "caption", "center", "cite", "code", "col", "colgroup", "data", "datalist",
        "dd", "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em", "embed",
        "fieldset", "figcaption", "figure", "font", "footer", "form", "frame", "frameset",
        "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "i",
        "iframe", "img", "input", "ins", "kbd", "label", "legend", "li", "link", "main", "map",
        "mark", "marquee", "math", "menu", "meta", "meter", "nav", "nobr", "noembed",
        "noframes", "noscript", "object", "ol", "optgroup", "option", "output", "p", "param",
        "picture", "plaintext", "pre", "progress", "q", "rp", "rt", "ruby", "s", "samp",
        "script", "search", "section", "select", "slot", "small", "source", "span", "strike",
        "strong", "style", "sub", "summary", "sup", "svg", "table", "tbody", "td", "template",
        "textarea", "tfoot", "th", "thead", "time", "title", "tr", "track", "tt", "u", "ul",
        "var", "video", "wbr", "xmp",
    }
)  # fmt: skip
# Those written without an end tag.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
     "wbr"}
)  # fmt: skip
# A tag's start: "<name", "</name" (a prefixed "o:p" is Office's), or "<!--" (a comment).
# (Not "<![CDATA[": no HTML holds one, and "How to use <![CDATA[ in XML" is a title about
# it: read as HTML, it lost its end. Text wholly wrapped in one is unwrapped before.)
_TAG_NAME = re.compile(r"<(?:(/?)([A-Za-z][A-Za-z0-9]*)(:[A-Za-z])?|!--)")


def looks_like_html(text: str) -> bool:
    """Whether text of no declared type (an RSS title, an author's name) holds HTML: an
    end tag or a void element (``<br>``, ``<img>``) of an HTML element, any tag of one
    that opens the text ("<p>Unclosed"), Office's prefixed tags (``<o:p>``), or a
    comment. Otherwise its "<" is text: "C++ vector<int>", "x<y and y>z",
    "Ann <ann@example.org>", "The <select> element", "How to use <![CDATA[ in XML"."""
    for found in _TAG_NAME.finditer(text):  # the first tag that says HTML ends the look
        end, name, prefixed = found.groups()
        if name is None or prefixed:
            return True
        name = name.lower()
        if name in HTML_ELEMENTS and (end or name in VOID_ELEMENTS or found.start() == 0):
            return True
    return False


def _guessed(text: str, limit: int) -> str:
    """Text of no declared type as plain text: HTML when it holds HTML; else its character
    references decoded ("Fish &amp; Chips", as feeds write it), "<" left as it is. (Cut
    to MAX_HTML first, as plain cuts it: a title of megabytes is no reason to hold them.)"""
    text = _unwrapped(text[:MAX_HTML])
    if looks_like_html(text):
        return plain(text, limit, is_html=True)
    return plain(html.unescape(text) if "&" in text else text, limit)
