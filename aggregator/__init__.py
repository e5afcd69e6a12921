"""aggregator: NATO news from saved pages and live feeds, republished as topic feeds.

The public names below load on first use (PEP 562): every command imports this
package, and most need neither the snapshot reader nor the entry model to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.errors import AggregatorError, ConfigError, SourceError, UnknownLayoutError
    from aggregator.model import Precision, Provenance, Published, SourceEntry
    from aggregator.source import parse_source

__version__ = "0.1.0"

_HOMES = {
    "AggregatorError": "aggregator.errors",
    "ConfigError": "aggregator.errors",
    "SourceError": "aggregator.errors",
    "UnknownLayoutError": "aggregator.errors",
    "Precision": "aggregator.model",
    "Provenance": "aggregator.model",
    "Published": "aggregator.model",
    "SourceEntry": "aggregator.model",
    "parse_source": "aggregator.source",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aggregator' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
