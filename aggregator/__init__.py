"""aggregator: NATO news from saved pages and live feeds, republished as topic feeds."""

from aggregator.errors import AggregatorError, ConfigError, SourceError, UnknownLayoutError
from aggregator.model import Precision, Provenance, Published, SourceEntry
from aggregator.source import parse_source

__version__ = "0.1.0"

__all__ = [
    "AggregatorError",
    "ConfigError",
    "Precision",
    "Provenance",
    "Published",
    "SourceEntry",
    "SourceError",
    "UnknownLayoutError",
    "__version__",
    "parse_source",
]
