"""``aggregator store …``: commands about the store itself (thin: each calls the library)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("aggregator")
P = TypeVar("P", bound=argparse.ArgumentParser)  # the parser class of the command line

COPY_EXAMPLE = """examples:
  aggregator store copy --to postgresql://aggregator@db.example/news
  AGGREGATOR_STORE_URL=postgresql://aggregator@db.example/news \\
      aggregator store copy --to state/back.sqlite3
"""


def cmd_store_copy(args: argparse.Namespace) -> int:
    from aggregator.cli import DEFAULT_CONFIG
    from aggregator.config import load_config
    from aggregator.store.copy import copy_store, target_settings

    config = load_config(Path(args.config or DEFAULT_CONFIG))
    target = target_settings(config.store, args.to)
    copied = copy_store(config.store, target)
    where = target.url or target.path
    print(
        f"copied {copied['entries']} entries, {copied['sightings']} sightings, "
        f"{copied['entry_topics']} topic labels and {copied['fetch_state']} fetch states "
        f"to {where if target.url is None else _redacted(target.url)}; the counts match"
    )
    return 0


def _redacted(url: str) -> str:
    from aggregator.store.postgres import redact

    return redact(url)


def add_parser(commands: argparse._SubParsersAction[P], summary: str) -> list[P]:
    """The ``store`` command (``summary``: its line in ``aggregator --help``) and its
    subcommands; returns every parser made."""
    store = commands.add_parser(
        "store",
        help=summary,
        description="Commands about the store itself.",
        epilog=COPY_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    copy = group.add_parser(
        "copy",
        help="copy every story, source and fetch state into another, empty store",
        description="Copy the configured store ([store] path, or [store] url / "
        "AGGREGATOR_STORE_URL) into an empty PostgreSQL database or SQLite file, keeping "
        "ids, first-seen times, sources, topics and fetch state, then compare row counts. "
        "Runs under the write lock; then point [store] url (or path) at the copy.",
        epilog=COPY_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    copy.add_argument(
        "--to", required=True, metavar="URL_OR_PATH", help="a postgresql:// URL or an SQLite file"
    )
    copy.set_defaults(handler=cmd_store_copy)
    return [store, copy]
