"""The lasting store: every story ever seen, where it came from, and each feed's fetch state.

Backends live in their own modules (:mod:`aggregator.store.sqlite`, the default); this
package keeps the names callers import.
"""

from __future__ import annotations

from aggregator.errors import StoreError
from aggregator.store.sqlite import MIGRATIONS, IngestReport, Store, retention_cutoff, sort_key

__all__ = ["MIGRATIONS", "IngestReport", "Store", "StoreError", "retention_cutoff", "sort_key"]
