"""What the aggregator remembers about each live source between runs.

Validators for conditional GET, a permanent redirect's new URL, a "gone"
verdict, the time a server asked us not to return before, and the entries of
the last good fetch (so that a 304, or a failure, still feeds the run). Kept in
a small JSON file, replaced atomically; the SQLite store will take this over.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aggregator.live.fetch import Validators
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.output import write_if_changed

log = logging.getLogger("aggregator")
VERSION = 1


@dataclass(frozen=True, slots=True)
class SourceState:
    url: str | None = None  # the URL to fetch now, when a 301 moved it
    etag: str | None = None
    last_modified: str | None = None
    retry_not_before: datetime | None = None
    gone_since: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    entries: tuple[SourceEntry, ...] = field(default=())

    @property
    def validators(self) -> Validators:
        return Validators(self.etag, self.last_modified)

    def with_validators(self, validators: Validators) -> SourceState:
        return replace(self, etag=validators.etag, last_modified=validators.last_modified)


def _published(data: dict[str, Any] | None) -> Published | None:
    if data is None:
        return None
    instant = data.get("instant")
    if instant:
        return Published.at(datetime.fromisoformat(instant))
    return Published.on_day(date.fromisoformat(data["day"]))


def _published_json(value: Published | None) -> dict[str, str] | None:
    if value is None:
        return None
    if value.instant is not None:
        return {"instant": value.instant.isoformat()}
    return {"day": value.day.isoformat()}


def entry_to_json(entry: SourceEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["published"] = _published_json(entry.published)
    data["updated"] = _published_json(entry.updated)
    data["categories"] = list(entry.categories)
    return data


def entry_from_json(data: dict[str, Any]) -> SourceEntry:
    return SourceEntry(
        title=data["title"],
        published=_published(data.get("published")),
        summary=data.get("summary", ""),
        provenance=Provenance(**data["provenance"]),
        link=data.get("link"),
        author=data.get("author"),
        guid=data.get("guid"),
        updated=_published(data.get("updated")),
        categories=tuple(data.get("categories", ())),
        content_html=data.get("content_html"),
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _state_json(state: SourceState) -> dict[str, Any]:
    return {
        "url": state.url,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "retry_not_before": state.retry_not_before.isoformat() if state.retry_not_before else None,
        "gone_since": state.gone_since.isoformat() if state.gone_since else None,
        "last_success": state.last_success.isoformat() if state.last_success else None,
        "last_error": state.last_error,
        "entries": [entry_to_json(e) for e in state.entries],
    }


def _state_from_json(data: dict[str, Any]) -> SourceState:
    return SourceState(
        url=data.get("url"),
        etag=data.get("etag"),
        last_modified=data.get("last_modified"),
        retry_not_before=_time(data.get("retry_not_before")),
        gone_since=_time(data.get("gone_since")),
        last_success=_time(data.get("last_success")),
        last_error=data.get("last_error"),
        entries=tuple(entry_from_json(e) for e in data.get("entries", ())),
    )


class StateFile:
    """Per-source state, keyed by the source's configured URL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sources: dict[str, SourceState] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            self.sources = {key: _state_from_json(value) for key, value in raw["sources"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as error:
            # Losing it costs one unconditional fetch per source, nothing more.
            log.warning("%s: unreadable state (%s); starting afresh", path, error)

    def get(self, key: str) -> SourceState:
        return self.sources.get(key, SourceState())

    def put(self, key: str, state: SourceState) -> None:
        self.sources[key] = state

    def save(self) -> None:
        data = {
            "version": VERSION,
            "sources": {k: _state_json(v) for k, v in sorted(self.sources.items())},
        }
        write_if_changed(
            self.path, (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode()
        )
