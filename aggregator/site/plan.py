"""Which files a publish must render again: those whose inputs changed. Pure.

Every output is a pure function of the render settings (the render fingerprint) and
of the entries it shows: a feed's three documents and its topic page of the feed's
entries (and, for an empty feed, of the fallback date), an entry page of its entry,
the index of every feed's entries, the OPML and the static files of the settings
alone, and of the code that renders (our templates and renderers, the libraries'
versions). A :class:`Manifest` records a digest of those inputs for every feed and
every entry page, as the files on disk were rendered, and of the code; :func:`changes`
compares it with the digests of what the store holds now, and names what must be
rendered again (everything when the code differs). What does not change keeps its
bytes, so rendering only the rest gives exactly the files a full render would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator.model import Entry
from aggregator.records import record


def entry_digest(entry: Entry) -> str:
    """A digest of everything a page or feed shows of ``entry``.

    ``last_seen`` is left out: no output shows it, and it moves every time a source
    shows the entry again. Everything else (text, dates, sources with their lines,
    topics, media) is in, so a new sighting redoes the entry's page.
    """
    shown = dataclasses.replace(entry, last_seen=entry.first_seen)
    return hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()


def document_digest(data: bytes) -> str:
    """A digest of a file's bytes (a feed document as written)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def feed_digest(entry_digests: Sequence[str], fallback: datetime) -> str:
    """A digest of a feed's inputs: its entries in order (an empty feed shows the
    ``fallback`` date instead, the newest entry overall)."""
    parts = list(entry_digests) if entry_digests else [f"empty {fallback.isoformat()}"]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


@record
class Manifest:
    """What the files were rendered from: a digest per feed (by slug) and per entry
    page (by entry id, for every entry shown in any feed), and of the rendering code;
    and, once they are rendered, a digest of each feed document's bytes (by file name),
    so that a later publish may take items from them (aggregator.splice)."""

    feeds: Mapping[str, str]
    entries: Mapping[str, str]
    code: str = ""
    documents: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def dumps(self) -> str:
        data = {
            "feeds": self.feeds,
            "entries": self.entries,
            "code": self.code,
            "documents": self.documents,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Manifest | None:
        """The manifest ``text`` holds, or None if it holds none (absent or unreadable)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            feeds, entries, code = data["feeds"], data["entries"], data["code"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(feeds, dict) or not isinstance(entries, dict):
            return None
        documents = data.get("documents")  # (not in manifests written before they were)
        return cls(
            {str(k): str(v) for k, v in feeds.items()},
            {str(k): str(v) for k, v in entries.items()},
            str(code),
            {str(k): str(v) for k, v in documents.items()} if isinstance(documents, dict) else {},
        )


def manifest_of(
    latest: Mapping[str, Sequence[Entry]], fallback: datetime, code: str = ""
) -> Manifest:
    """The manifest of the feeds showing ``latest`` (slug → entries, newest first),
    rendered by the code whose digest is ``code``."""
    entries: dict[str, str] = {}
    feeds: dict[str, str] = {}
    for slug, shown in latest.items():
        for entry in shown:
            if entry.id not in entries:  # an entry in several feeds: one digest
                entries[entry.id] = entry_digest(entry)
        feeds[slug] = feed_digest([entries[entry.id] for entry in shown], fallback)
    return Manifest(feeds, entries, code)


@record
class Changes:
    """What to render: ``everything``, or the feeds (their documents and topic pages)
    and entry pages named, and the index when any feed changed."""

    everything: bool
    feeds: frozenset[str] = frozenset()
    entries: frozenset[str] = frozenset()

    @property
    def index(self) -> bool:
        return self.everything or bool(self.feeds)

    def feed(self, slug: str) -> bool:
        return self.everything or slug in self.feeds

    def entry(self, entry_id: str) -> bool:
        return self.everything or entry_id in self.entries


EVERYTHING = Changes(everything=True)


def changes(previous: Manifest | None, current: Manifest) -> Changes:
    """What differs between the files as ``previous`` rendered them and ``current``
    (None: unknown, render everything; other code: everything too)."""
    if previous is None or previous.code != current.code:
        return EVERYTHING
    feeds = frozenset(
        slug for slug, digest in current.feeds.items() if previous.feeds.get(slug) != digest
    )
    entries = frozenset(
        entry_id
        for entry_id, digest in current.entries.items()
        if previous.entries.get(entry_id) != digest
    )
    return Changes(everything=False, feeds=feeds, entries=entries)
