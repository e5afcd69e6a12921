"""The project's exceptions: one base class, each error naming where it happened.

A command-line user sees ``str(error)``: one line saying which source, where
(file:line, URL or config key), what went wrong and what to do about it.
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Base class of every error the aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """The configuration file is unreadable or holds a bad setting.

    ``where`` is the file, optionally with the key (``config.toml: sources[2].kind``).
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class SourceError(AggregatorError):
    """One source could not be read; the others are unaffected.

    ``location`` is a path (optionally ``path:line``) or a URL.
    """

    def __init__(self, source: str, location: str, message: str) -> None:
        text = f"{source}: {message}" if source == location else f"{source} ({location}): {message}"
        super().__init__(text)
        self.source = source
        self.location = location
        self.message = message


class UnknownLayoutError(SourceError):
    """A snapshot's text fits none of the known page layouts."""


class CaptureTimeError(SourceError):
    """A page gives ages ("2 weeks ago") but no capture time is known or inferable."""
