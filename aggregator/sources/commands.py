"""The ``aggregator sources …`` command group: argument parsing and printing only.

Each handler reads its arguments, makes one library call (:mod:`.add`,
:mod:`.configfile`, :mod:`.opml`, :mod:`.status`) and formats the answer; errors
are the library's, turned into exit codes by ``aggregator.cli.main``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from aggregator.snapshots.page import Captured

log = logging.getLogger("aggregator")
P = TypeVar("P", bound=argparse.ArgumentParser)  # the parser class of the command line

DEFAULT_CONFIG = "config.toml"


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or DEFAULT_CONFIG)


def captured_argument(text: str) -> Captured:
    """``--captured``: a capture time (aggregator.config.parse_captured), or a usage error
    saying what is wrong with it."""
    from aggregator.config import parse_captured

    try:
        return parse_captured(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _topics(text: str) -> tuple[str, ...]:
    """``--topics a,b``: each slug once ("ukraine,ukraine" is one)."""
    return tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def cmd_add(args: argparse.Namespace) -> int:
    from aggregator.live.sandbox import Sandbox
    from aggregator.sources.add import AlreadyRead, DiscoveryError, add_source

    with Sandbox(workers=1) as sandbox:
        try:
            added = add_source(
                _config_path(args),
                args.target,
                sandbox=sandbox,
                name=args.name,
                topics=args.topics,
                pick=args.pick,
                captured=args.captured,
                now=datetime.now(UTC),
            )
        except (DiscoveryError, AlreadyRead) as error:
            if error.discovery is not None:
                _print_found(error.discovery, None)
            raise
    if added.discovery is not None:
        _print_found(added.discovery, added.source.url)
    location = added.source.url or added.source.path
    holds = [] if added.title is None else [f"{added.title!r}"]
    if added.entries is not None:
        holds.append(_entries(added.entries))
    print(
        f"added {added.source.name!r} ({location}) as {added.key}: {added.what}"
        + (f", {', '.join(holds)}" if holds else "")
    )
    return 0


def _entries(count: int | None) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _print_found(discovery: object, chosen: str | None) -> None:
    from aggregator.live.discover import Discovery

    assert isinstance(discovery, Discovery)
    if discovery.is_feed:
        return
    count = len(discovery.candidates)
    print(f"{discovery.url}: {count} feed{'s' if count != 1 else ''} to choose from:")
    for number, candidate in enumerate(discovery.candidates, start=1):
        mark = "*" if candidate.url == chosen else " "
        about = candidate.label or candidate.how
        if candidate.ok:
            result = f"{candidate.title!r}, {_entries(candidate.entries)}"
        else:
            result = f"not usable: {candidate.error}"
        print(f" {mark}{number}. {candidate.url}  [{about}]  {result}")


def cmd_remove(args: argparse.Namespace) -> int:
    from aggregator.sources.configfile import SourcesFile

    edit = SourcesFile(_config_path(args), "sources remove")
    removed = edit.remove(args.name)
    edit.save()
    where = removed.get("url") or removed.get("path")
    name = str(removed.get("name", args.name)).strip()  # as runs name it (spaces ignored)
    print(f"removed {name!r} ({where}); {_what_stays(removed.get('topics'))}")
    return 0


def _what_stays(hints: object) -> str:
    """What becomes of a removed source's stories. Said from its table alone (the store
    is not read): its topic hint goes with it, and the next run judges every story
    again, so a story that only the hint put in a topic leaves that topic's feed."""
    stays = "its stories stay in the store and the feeds"
    if not isinstance(hints, list) or not hints:
        return stays
    slugs = ", ".join(str(slug) for slug in hints)
    which = "that topic's" if len(hints) == 1 else "those topics'"
    return (
        f"{stays}, but from the next run a story only its topic hint put in {slugs} "
        f"leaves {which} feeds"
    )


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    from aggregator.sources.configfile import SourcesFile

    edit = SourcesFile(_config_path(args), f"sources {'enable' if enabled else 'disable'}")
    name = edit.names()[edit.index_of(args.name)]  # (given by key, URL or file too)
    changed = edit.set_enabled(args.name, enabled)
    edit.save()
    state = "enabled" if enabled else "disabled"
    print(f"{name!r} {'is now' if changed else 'was already'} {state}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, False)


def cmd_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, True)


def cmd_import(args: argparse.Namespace) -> int:
    from aggregator.sources.opml import import_opml, opml_file

    result = import_opml(
        _config_path(args),
        opml_file(args.file),
        folders_as_topics=args.folders_as_topics,
        dry_run=args.dry_run,
    )
    for warning in result.warnings:
        log.warning("%s", warning)
    for source in result.added:
        hints = f"  (topics: {', '.join(source.topics)})" if source.topics else ""
        print(f"{'would add' if args.dry_run else 'added'} {source.name!r}: {source.url}{hints}")
    verb = "would be added" if args.dry_run else "added"
    added, noted = len(result.added), len(result.warnings)
    print(f"{added} source(s) {verb} from {args.file}; {noted} warning(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from aggregator.sources.configfile import SourcesFile
    from aggregator.sources.opml import export_opml

    config = SourcesFile(_config_path(args))
    sys.stdout.write(export_opml(config.tables(), f"{config.config.feeds.title}: sources"))
    return 0


def _when(value: datetime | None, none: str) -> str:
    """A time in UTC, or ``none`` ("never", "-") without a time zone that means nothing."""
    return none if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_list(args: argparse.Namespace) -> int:
    from aggregator.config import load_config
    from aggregator.sources.status import source_statuses

    config = load_config(_config_path(args))
    statuses = source_statuses(config, datetime.now(UTC))
    if args.json:
        json.dump([s.to_json() for s in statuses], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    for status in statuses:
        state = "" if status.enabled else "  [disabled]"
        if status.gone_since is not None:
            state += f"  [gone since {status.gone_since:%Y-%m-%d}]"
        print(f"{status.name}  ({status.kind}: {status.location}){state}")
        print(
            f"    last success {_when(status.last_success, 'never')}, next due "
            f"{_when(status.next_due, '-')}; {_entries(status.entries)} read, "
            f"{status.contributed} told by no other source"
        )
        if status.last_error:
            print(f"    last error: {status.last_error}")
    return 0


ADD_EXAMPLE = """\
The next run reads the source; a running `aggregator serve` applies the change by itself.

examples:
  aggregator sources add https://www.nato.int/
  aggregator sources add https://example.org/blog/ --pick 2 --name "Example blog"
  aggregator sources add tests/data/feeds/jsonfeed10.json --topics deterrence
  aggregator sources add tests/data/snapshots/newsfeed_no_capture.txt --captured 2023-10-20
"""
IMPORT_EXAMPLE = """\
examples:
  aggregator sources import subscriptions.opml
  aggregator sources import --folders-as-topics --dry-run tests/data/opml/feedly.opml
"""
EXPORT_EXAMPLE = """\
examples:
  aggregator sources export > sources.opml
"""
LIST_EXAMPLE = """\
examples:
  aggregator sources list
  aggregator sources list --json
"""
REMOVE_EXAMPLE = """\
A source is named by its name, or by its key (sources[3], as `sources list --json`
gives it), its URL or its file.

examples:
  aggregator sources remove "NATO news feed"
  aggregator sources remove https://www.nato.int/cps/rss/en/natohq/rssFeed.xsl/rssFeed.xml
"""
DISABLE_EXAMPLE = """\
A source is named by its name, or by its key (sources[3], as `sources list --json`
gives it), its URL or its file.

examples:
  aggregator sources disable "NATO news feed"
  aggregator sources enable "sources[1]"
"""


def add_parser(commands: argparse._SubParsersAction[P], summary: str) -> list[P]:
    """The ``sources`` command (``summary``: its line in ``aggregator --help``) and its
    subcommands; returns every parser made, for the caller to give each the common flags."""
    raw = argparse.RawDescriptionHelpFormatter
    group = commands.add_parser(
        "sources",
        help=summary,
        description="Manage the [[sources]] of the config. Edits keep every comment and "
        "the layout of the file, and are written atomically.",
        epilog="examples:\n  aggregator sources list\n  aggregator sources add https://www.nato.int/",
        formatter_class=raw,
    )
    sub = group.add_subparsers(dest="sources_command", required=True, metavar="SUBCOMMAND")
    made = [group]

    add = sub.add_parser(
        "add",
        help="add a site's feed, a feed URL, or a saved page",
        description="Add a source. Given a web page, find its feeds (<link rel=alternate> "
        "for RSS, Atom and JSON Feed, else /feed, /rss.xml, /atom.xml, /feed.json…), check "
        "each, and add the best (or the one --pick names). Given a feed, check it parses. "
        "Given a saved page, recognise its layout. A duplicate (same URL, same file or same "
        "name) is refused.",
        epilog=ADD_EXAMPLE,
        formatter_class=raw,
    )
    add.add_argument("target", metavar="URL-OR-PATH", help="a web page, a feed, or a file")
    add.add_argument("--name", help="the source's name (default: the feed's title)")
    add.add_argument(
        "--topics",
        type=_topics,
        default=(),
        metavar="T,...",
        help="topic slugs every story of this source belongs to",
    )
    add.add_argument(
        "--pick", metavar="N-OR-URL", help="which of the feeds found to add (number or URL)"
    )
    add.add_argument(
        "--captured",
        type=captured_argument,
        metavar="WHEN",
        help="a saved page: when it was saved (YYYY-MM-DD, or an ISO time with its offset), "
        "written to the config; needed by pages that date stories by age ('2 weeks ago') "
        "and print no dates to tell it from",
    )
    add.set_defaults(handler=cmd_add)

    imports = sub.add_parser(
        "import",
        help="add every feed of an OPML file",
        description="Add every feed of an OPML 1.0/2.0 file (a feed reader's export), in one "
        "edit: all or nothing. Outlines without a usable URL, and feeds already in the "
        "config, are skipped with a warning naming their line.",
        epilog=IMPORT_EXAMPLE,
        formatter_class=raw,
    )
    imports.add_argument("file", metavar="FILE.opml")
    imports.add_argument(
        "--folders-as-topics",
        action="store_true",
        help="a folder named like a topic (slug or title) makes its feeds belong to it",
    )
    imports.add_argument("--dry-run", action="store_true", help="say what would be added")
    imports.set_defaults(handler=cmd_import)

    export = sub.add_parser(
        "export",
        help="print the live sources as OPML",
        description="Print an OPML 2.0 file of the sources that have a feed URL (the sources "
        "read, as opposed to the topic feeds published in feeds/topics.opml).",
        epilog=EXPORT_EXAMPLE,
        formatter_class=raw,
    )
    export.set_defaults(handler=cmd_export)

    listing = sub.add_parser(
        "list",
        help="show each source and how it is doing",
        description="Each source with its kind, last success, last error, next due time, "
        "entries read and stories no other source told. Reads the config and the store only.",
        epilog=LIST_EXAMPLE,
        formatter_class=raw,
    )
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=cmd_list)

    remove = sub.add_parser(
        "remove",
        help="remove a source from the config",
        description="Remove a source from the config. Its stories stay in the store.",
        epilog=REMOVE_EXAMPLE,
        formatter_class=raw,
    )
    remove.add_argument("name", metavar="SOURCE", help="its name, key, URL or file")
    remove.set_defaults(handler=cmd_remove)
    made += [add, imports, export, listing, remove]

    for verb, handler, what in (
        ("disable", cmd_disable, "skip a source in runs and serve (enabled = false)"),
        ("enable", cmd_enable, "read a disabled source again"),
    ):
        parser = sub.add_parser(
            verb,
            help=what,
            description=what[0].upper() + what[1:] + ".",
            epilog=DISABLE_EXAMPLE,
            formatter_class=raw,
        )
        parser.add_argument("name", metavar="SOURCE", help="its name, key, URL or file")
        parser.set_defaults(handler=handler)
        made.append(parser)
    return made
