"""OPML subscription lists: importing a feed reader's export, exporting our sources.

Import reads OPML 1.0 and 2.0 as readers write it (Feedly, Inoreader, NetNewsWire,
Miniflux, FreshRSS, Thunderbird): ``<outline>`` elements with ``xmlUrl`` are
feeds, outlines holding others are folders, nested as deep as they like (up to
:data:`MAX_DEPTH`). Attribute names are matched without regard to case
(``xmlurl`` occurs). A feed's name is its ``title``, else its ``text``, else its URL.

An OPML file is untrusted input, read before anything is edited:

* it must be XML with an ``<opml>`` root and a ``<body>``: otherwise an error;
* a document type declaration (where entities are declared: billion laughs, XXE)
  is refused outright, in any encoding (its bytes are looked for before parsing,
  and the parsed document is asked again: UTF-16 and UTF-32 hide it from a byte
  search), and the parser neither loads DTDs nor resolves entities;
* at most :data:`MAX_BYTES` bytes and :data:`MAX_FEEDS` feeds: a larger file is an
  error saying so, not a config with thousands of sources;
* an outline that cannot be used (no URL, a URL that is not http(s), a URL already
  in the file or in the config) is skipped with a warning naming its line.

Every feed is added in one edit of the config: all of them, or none.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aggregator.config import Config
from aggregator.errors import ConfigError
from aggregator.live import clean
from aggregator.localfile import read_named
from aggregator.sources.configfile import (
    NewSource,
    SourcesFile,
    normalise_url,
    pasted,
    usable_name,
)
from aggregator.uri import without_credentials
from aggregator.xmlescape import escape_text, quote_attribute

MAX_BYTES = 5 << 20
MAX_FEEDS = 1000
MAX_DEPTH = 16
_DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# A web page given for an OPML file: its document type, or its root element, near its start.
_HTML = re.compile(rb"<!DOCTYPE\s+html|<html[\s>]", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")


class OpmlError(ConfigError):
    """An OPML file that cannot be imported at all; the config is unchanged. Bad input
    named on the command line: a usage error (exit 2), as a bad config is."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(file, f"{message}; nothing was imported")
        self.file = file


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed outline: its URL, name, web page, the folders it sits in and its OPML 2.0
    categories (the ``/paths`` of its ``category`` attribute, as written). A feed listed
    again keeps its first outline, with the folders and categories of every one."""

    url: str
    title: str
    line: int | None
    html_url: str | None = None
    folders: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OpmlList:
    feeds: tuple[OpmlFeed, ...]
    warnings: tuple[str, ...] = ()
    # Each folder's first line (a folder's warning is said there, not at a feed in it
    # that was listed first elsewhere).
    folders: Mapping[str, int] = field(default_factory=dict)


def _attributes(element: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in element.attrib.items()}


def _categories(value: str | None) -> tuple[str, ...]:
    """The category paths of an OPML 2.0 ``category`` attribute: comma-separated,
    slash-delimited (``/ukraine``, ``/News/Deterrence``); a word without a leading slash
    is a tag, not a category path, and is left out."""
    found: list[str] = []
    for part in (value or "").split(","):
        path = clean.plain(part, 200).strip()
        if path.startswith("/") and path.strip("/") and path not in found:
            found.append(path)
    return tuple(found)


def _joined(first: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(item for item in dict.fromkeys(more) if item not in first)


def read_opml(data: bytes, file: str) -> OpmlList:
    """The feeds of an OPML document, with a warning per outline that was skipped.

    Raises OpmlError when the document is not OPML, is too big, declares entities or
    holds no feed outline at all.
    """
    from lxml import etree

    if len(data) > MAX_BYTES:
        raise OpmlError(
            file, f"{len(data):,} bytes, over the {MAX_BYTES >> 20} MB limit for an OPML file"
        )
    if _HTML.search(data[:4096]):
        # (Found by review: said to declare a document type, which an HTML page does.)
        raise OpmlError(
            file,
            "not OPML: a web page (HTML); export the subscriptions from the feed reader as "
            "OPML (an .opml file), or add the site itself with 'aggregator sources add'",
        )
    if _DOCTYPE.search(data[:4096]) or _DOCTYPE.search(data):
        raise OpmlError(
            file, "declares a document type or entities (<!DOCTYPE>/<!ENTITY>), refused"
        )
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        if "encoding" in str(error).lower():
            # An OPML file all the same, saved in another encoding than it says (found by
            # review: told to export the subscriptions as OPML, which it is).
            where = f"line {error.lineno}, column {error.offset}" if error.lineno else "a byte"
            declared = re.match(
                rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*[\"']([\w.:-]+)", data
            )
            what = (
                f"its bytes are not the {declared[1].decode()} its first line declares"
                if declared
                else "not UTF-8, and its first line names no other encoding"
            )
            raise OpmlError(
                file,
                f"{what} (at {where}); save it as UTF-8, or name its encoding in its first "
                'line (<?xml version="1.0" encoding="windows-1252"?>)',
            ) from error
        from aggregator.live.jsonfeed import is_json_feed

        if is_json_feed(data, None):
            raise OpmlError(file, f"not OPML: a JSON Feed; {_as_feed(file)}") from error
        raise OpmlError(file, f"not XML ({error}); export the subscriptions as OPML") from error
    # The bytes above are searched as ASCII; in UTF-16 or UTF-32 a declaration is other
    # bytes, so the parsed document is asked too, whatever its encoding.
    info: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if (
        info.doctype
        or info.internalDTD is not None
        or info.externalDTD is not None
        or next(root.iter(etree.Entity), None) is not None
    ):
        raise OpmlError(
            file, "declares a document type or entities (<!DOCTYPE>/<!ENTITY>), refused"
        )
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        # Its name without its namespace: <feed> for Atom's {http://www.w3.org/2005/Atom}feed.
        tag = root.tag.rpartition("}")[2] if isinstance(root.tag, str) else "?"
        advice = f"; {_as_feed(file)}" if tag.lower() in ("rss", "feed", "rdf") else ""
        raise OpmlError(file, f"not OPML: the root element is <{tag}>, not <opml>{advice}")
    body = next((c for c in root if isinstance(c.tag, str) and c.tag.lower() == "body"), None)
    if body is None:
        raise OpmlError(file, "not OPML: no <body>")
    feeds: list[OpmlFeed] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}  # a feed's normalised URL → its place in feeds
    folder_lines: dict[str, int] = {}
    outlines = 0

    def walk(element: Any, folders: tuple[str, ...], depth: int = 0) -> None:
        nonlocal outlines
        for child in element:
            if not isinstance(child.tag, str) or child.tag.lower() != "outline":
                continue
            outlines += 1
            where = f"{file}:{child.sourceline}"
            attributes = _attributes(child)
            label = clean.plain(attributes.get("title") or attributes.get("text"), 200)
            raw_url = attributes.get("xmlurl", "").strip()
            nested = any(isinstance(c.tag, str) for c in child)
            if raw_url:
                take(attributes, label, raw_url, where, child.sourceline, folders)
            elif not nested:
                what = f"outline {label!r}" if label else "an outline"
                page = clean.safe_url(attributes.get("htmlurl"))
                if page is None:
                    warnings.append(f"{where}: {what} has no xmlUrl; skipped")
                else:
                    # A site without its feed's address (found by review: said as
                    # nothing but "no xmlUrl").
                    page = without_credentials(page)
                    warnings.append(
                        f"{where}: {what} has no xmlUrl, only its site ({page}); skipped: "
                        f"aggregator sources add {shlex.quote(page)} finds its feed"
                    )
            if not nested:
                continue
            if depth >= MAX_DEPTH:
                warnings.append(f"{where}: folders nested over {MAX_DEPTH} deep; skipped")
            elif raw_url:
                # Outlines inside a feed's own (some readers nest related feeds so): in
                # the feed's folders, not in a folder named after it (found by review:
                # they were dropped without a word).
                walk(child, folders, depth + 1)
            else:
                if label:
                    folder_lines.setdefault(label, child.sourceline)
                walk(child, (*folders, label) if label else folders, depth + 1)

    def take(
        attributes: dict[str, str],
        label: str,
        raw_url: str,
        where: str,
        line: int,
        folders: tuple[str, ...],
    ) -> None:
        url = clean.safe_url(pasted(raw_url))  # "feed://…", as `sources add` takes it
        if url is None:
            warnings.append(
                f"{where}: xmlUrl {clean.plain(raw_url, 100)!r} is not an http(s) URL; skipped"
            )
            return
        key = normalise_url(url)
        categories = _categories(attributes.get("category"))
        if key in seen:
            first = feeds[seen[key]]
            joined = replace(
                first,
                folders=_joined(first.folders, folders),
                categories=_joined(first.categories, categories),
            )
            more = "" if joined == first else ", its folders and categories joined to the first's"
            feeds[seen[key]] = joined
            warnings.append(
                f"{where}: {url} is listed again (first at line {first.line}); skipped{more}"
            )
            return
        seen[key] = len(feeds)
        if len(feeds) >= MAX_FEEDS:
            raise OpmlError(
                file,
                f"more than {MAX_FEEDS:,} feeds; import at most {MAX_FEEDS:,} at a time "
                "(split the file by folder)",
            )
        html_url = clean.safe_url(attributes.get("htmlurl"))
        feeds.append(OpmlFeed(url, usable_name(label, url), line, html_url, folders, categories))

    walk(body, ())
    if outlines == 0:
        raise OpmlError(file, "no <outline> elements: no subscriptions to import")
    if not feeds:
        raise OpmlError(file, f"none of its {outlines} outlines is a feed with an http(s) xmlUrl")
    return OpmlList(tuple(feeds), tuple(warnings), folder_lines)


def _topic_for(folder: str, config: Config) -> str | None:
    """The topic a folder names: by slug (``Ukraine`` → ``ukraine``) or by title."""
    slug = _SLUG.sub("-", folder.lower()).strip("-")
    for topic in config.topics:
        if topic.slug == slug or topic.title.lower() == folder.lower():
            return topic.slug
    return None


@dataclass(frozen=True, slots=True)
class Imported:
    added: tuple[NewSource, ...]
    warnings: tuple[str, ...] = field(default=())


def _read(path: Path) -> bytes:
    """The bytes of an OPML file: a regular file only (a FIFO would block, a device such
    as /dev/zero never end), and no more than :data:`MAX_BYTES`."""
    return read_named(path, MAX_BYTES, what="an exported OPML file", fail=OpmlError)


def _as_feed(file: str) -> str:
    return f"it is a feed itself: add it with aggregator sources add {shlex.quote(file)}"


def opml_file(argument: str) -> Path:
    """The OPML file named on the command line; OpmlError for a web address (an OPML
    file is imported from this machine: found by review, an address was read as a
    path, its "//" made "/", and said to be no such file)."""
    address = argument.strip()
    scheme = address.partition(":")[0].lower()
    if scheme == "file":  # as `sources add` reads one (found by review: "a web address")
        parts = urlsplit(address)
        if parts.netloc not in ("", "localhost"):
            raise OpmlError(address, "a file: URL names a file on this machine; give its path")
        return Path(unquote(parts.path))
    if "://" in address or scheme == "feed":
        shown = without_credentials(address)
        raise OpmlError(
            shown,
            "a web address; sources import reads an OPML file saved on this machine: save "
            f"it first (curl -o subscriptions.opml '{shown}') and import that file; to add "
            f"one feed by its address: aggregator sources add '{shown}'",
        )
    return Path(argument)


def import_opml(
    config_path: Path, opml_path: Path, *, folders_as_topics: bool = False, dry_run: bool = False
) -> Imported:
    """Add every feed of an OPML file to the config, in one atomic edit.

    A feed already in the config (same normalised URL) is skipped with a warning; a
    name already used gets `` (2)``, `` (3)``…. With ``folders_as_topics``, each folder
    a feed sits in, and each part of its OPML 2.0 ``category`` paths (``/ukraine``, as
    :func:`export_opml` writes a topic hint), that names a topic of the config becomes a
    topic hint of the source; a feed listed in several folders gets the topics of all.
    """
    file = str(opml_path)
    listing = read_opml(_read(opml_path), file)
    edit = SourcesFile(config_path, "sources import")
    config = edit.config  # the config as the edit read it
    warnings = [(_line_of(warning, file), warning) for warning in listing.warnings]
    # A folder or category that names no topic, said once: at its first feed, with how
    # many it holds (found by review: said again at every feed in it).
    unnamed: dict[tuple[str, str], list[int]] = {}
    added: list[NewSource] = []
    names = set(edit.names())
    for feed in listing.feeds:
        line = feed.line or 0  # (lxml knows every element's line)
        topics: list[str] = []
        if folders_as_topics:
            for folder in feed.folders:
                slug = _topic_for(folder, config)
                if slug is None:
                    unnamed.setdefault(("folder", folder), []).append(line)
                elif slug not in topics:
                    topics.append(slug)
            for category in feed.categories:
                # A path is read as folders nested in each other: "/News/Ukraine".
                slugs = [_topic_for(part, config) for part in category.split("/") if part]
                if not any(slugs):
                    unnamed.setdefault(("category", category), []).append(line)
                topics += [slug for slug in dict.fromkeys(slugs) if slug and slug not in topics]
        name, number = feed.title, 2
        while name in names:
            name, number = f"{feed.title} ({number})", number + 1
        source = NewSource(name, url=feed.url, topics=tuple(topics))
        problem = edit.duplicate_of(source)  # of a source in the config
        if problem is not None:
            warnings.append((line, f"{file}:{feed.line}: {problem}; skipped"))
            continue
        names.add(name)
        added.append(source)
    for (what, label), lines in unnamed.items():
        feeds = f" (its {len(lines)} feeds)" if len(lines) > 1 else ""
        at = listing.folders.get(label, lines[0]) if what == "folder" else lines[0]
        warnings.append(
            (
                at,
                f"{file}:{at}: {what} {label!r} names no topic in the config; no topic "
                f"hint from it{feeds}",
            )
        )
    edit.add_all(added)  # one edit, checked once, dry run or not
    if added and not dry_run:
        edit.save()
    # In the file's order (found by review: a feed's own warnings came after the rest).
    ordered = [text for _, text in sorted(warnings, key=lambda pair: pair[0])]
    return Imported(tuple(added), tuple(ordered))


def _line_of(warning: str, file: str) -> int:
    """The line a warning of :func:`read_opml` names ("FILE:LINE: …"), else 0."""
    found = re.match(r"(\d+):", warning.removeprefix(f"{file}:"))
    return int(found[1]) if found else 0


def export_opml(tables: Sequence[Mapping[str, Any]], title: str) -> str:
    """An OPML 2.0 document of the live sources (the ``[[sources]]`` tables with an
    http(s) ``url``, as :meth:`SourcesFile.tables` gives them), in config order.

    Disabled sources are listed too; saved-page sources have no feed URL and are left
    out. A source's topic hints are its ``category`` (OPML 2.0: slash-delimited paths,
    comma-separated).
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{escape_text(title)}</title>",
        "  </head>",
        "  <body>",
    ]
    for table in tables:
        url = table.get("url")
        if not isinstance(url, str) or clean.safe_url(url) is None:
            continue
        name = str(table.get("name") or url)
        attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": url}
        topics = table.get("topics")
        if isinstance(topics, list) and topics:
            attributes["category"] = ",".join(f"/{slug}" for slug in topics)
        rendered = " ".join(f"{key}={quote_attribute(value)}" for key, value in attributes.items())
        lines.append(f"    <outline {rendered}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)
