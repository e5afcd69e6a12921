"""The ``aggregator`` command: a thin layer over the library.

Exit codes (also in the README):

* 0: all good;
* 1: some sources failed (the feeds were still written from the others);
* 2: bad configuration or usage; nothing was done;
* 3: another run (or the server) held the write lock too long; nothing was done;
* 4: the feeds or the store could not be written, or the store is damaged;
* 5: ``serve``: the port is already in use; nothing was done;
* 130: interrupted (Ctrl-C);
* 143: ``run`` stopped by SIGTERM (as Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias, cast

from aggregator.errors import AggregatorError, ConfigError, SourceError, StoreError, WriteError
from aggregator.lock import LockTimeout
from aggregator.snapshots import LAYOUT_NAMES

# Each command imports what it needs when it runs, and the help texts are made without
# importing the commands: ``aggregator run`` with nothing to read imports little more
# than the config and the store.
if TYPE_CHECKING:
    from aggregator.config import Config, SourceConfig
    from aggregator.live.sandbox import Sandbox
    from aggregator.model import SourceEntry

EXIT_OK = 0
EXIT_SOURCES_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_STORAGE = 4  # the feeds or the store could not be written; nothing was replaced
EXIT_PORT_IN_USE = 5  # serve: the address is taken; nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
EXIT_TERMINATED = 143  # SIGTERM (128 + 15), as shells report it
DEFAULT_CONFIG = "config.toml"

log = logging.getLogger("aggregator")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel({-1: logging.ERROR, 0: logging.WARNING}.get(verbosity, logging.INFO))


def _entry_json(entry: SourceEntry) -> dict[str, object]:
    return {
        "title": entry.title,
        "published": None if entry.published is None else entry.published.isoformat(),
        "precision": None if entry.published is None else entry.published.precision.value,
        "summary": entry.summary,
        "link": entry.link,
        "author": entry.author,
        "source": entry.source,
        "location": str(entry.provenance),
    }


def _entry_text(entry: SourceEntry) -> str:
    date = "undated" if entry.published is None else entry.published.isoformat()
    return f"{date:<10}  {entry.title}  [{entry.provenance}]"


def _configured_sources(args: argparse.Namespace) -> dict[Path, SourceConfig]:
    """The sources of the config (when there is one), by resolved path."""
    from aggregator.config import load_config

    if args.config is None and not Path(DEFAULT_CONFIG).exists():
        return {}
    config = load_config(Path(args.config or DEFAULT_CONFIG))
    return {source.path.resolve(): source for source in config.sources if source.path}


def cmd_parse(args: argparse.Namespace) -> int:
    from aggregator.live.sandbox import Sandbox

    with Sandbox(workers=1) as sandbox:
        return _parse_files(args, sandbox)


def _parse_files(args: argparse.Namespace, sandbox: Sandbox) -> int:
    import json

    from aggregator.config import FetchSettings, captured_after
    from aggregator.localfile import read_local
    from aggregator.source import parse_source

    if args.captured is not None and captured_after(args.captured, datetime.now(UTC)):
        log.error("--captured: %s is after today; give the day it was saved", args.captured)
        return EXIT_USAGE
    configured = _configured_sources(args)
    status = EXIT_OK
    found: list[SourceEntry] = []
    limit = FetchSettings().max_decoded_mb << 20
    for path in args.paths:
        if path.lower().startswith(("http://", "https://", "feed://", "feeds://")):
            # A path would mangle it ("http:/host/…: no such file"): say what parse is for.
            log.error(
                "%s: parse reads saved files; to follow a feed at an address, "
                "run 'aggregator sources add %s'",
                path,
                path,
            )
            status = EXIT_SOURCES_FAILED
            continue
        source = configured.get(Path(path).resolve())
        try:
            data = read_local(
                Path(path),
                name=source.name if source else path,
                setting="the path",
                limit=limit,
                limit_setting="[fetch] max_decoded_mb",
            )
            entries = parse_source(
                data,
                url=path,
                kind=args.kind or (source.kind if source else None),
                captured=args.captured or (source.captured if source else None),
                name=source.name if source else None,
                sandbox=sandbox,
            )
        except SourceError as error:
            log.error("%s", error)
            status = EXIT_SOURCES_FAILED
            continue
        found.extend(entries)
        if not args.json:
            for entry in entries:
                print(_entry_text(entry))
    if args.json:
        json.dump([_entry_json(e) for e in found], sys.stdout, ensure_ascii=False, indent=2)
        print()
    return status


def _clock() -> datetime:
    return datetime.now(UTC)


def cmd_run(args: argparse.Namespace) -> int:
    from aggregator.config import load_config
    from aggregator.heap import batch
    from aggregator.pipeline import run

    config = load_config(Path(args.config or DEFAULT_CONFIG))
    with batch(), _terminated_as_interrupted():
        result = run(config, now=datetime.now(UTC), force=args.force, clock=_clock)
    if result.failures:
        failed, every = len(result.failures), len(config.sources)
        if failed < every:
            log.error(
                "%d of %d sources failed; the feeds were written from the others", failed, every
            )
        else:
            log.error(
                "%s failed; the feeds still show what the store held",
                "the source" if every == 1 else f"all {every} sources",
            )
        return EXIT_SOURCES_FAILED
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    import dataclasses

    from aggregator.config import load_config
    from aggregator.store import open_store_to_read
    from aggregator.store.renames import current_names
    from aggregator.text import MAX_TITLE
    from aggregator.topics import topics_from_config
    from aggregator.uri import without_credentials

    if not args.entry.strip():  # words of nothing are in every entry
        log.error("explain: give an entry id, a title, or words of one")
        return EXIT_USAGE
    if len(args.entry) > MAX_TITLE:  # no title is longer (and a LIKE of 50,000 fails)
        log.error(
            "explain: give at most %d characters: an entry id, a title or words of one", MAX_TITLE
        )
        return EXIT_USAGE
    config = load_config(Path(args.config or DEFAULT_CONFIG))
    opened = open_store_to_read(config.store)  # (made by runs, never here)
    if opened is None:
        where = str(config.store.path)
        if config.store.url:
            from aggregator.store.postgres import redact

            where = redact(config.store.url)
        log.error("%s: no store yet; run 'aggregator run' first", where)
        return EXIT_SOURCES_FAILED
    topics = topics_from_config(config)
    limit = config.feeds.max_entries
    with opened as store:
        found = store.find(args.entry)
        # Which stories each topic's feeds show: its newest max_entries.
        shown = {t.slug: {e.id for e in store.newest(limit, t.slug)} for t in topics}
        # Sources renamed since the last run: told by their new names, as that run will.
        renamed = current_names(store, (*config.sources, *config.disabled_sources))
    if not found:
        log.error("no entry with the id or a title like %r", args.entry)
        return EXIT_SOURCES_FAILED
    for entry in found:
        if renamed:
            told = tuple(
                dataclasses.replace(p, source=renamed.get(p.source, p.source))
                for p in entry.sources
            )
            entry = dataclasses.replace(entry, sources=told)
        when = "undated" if entry.published is None else entry.published.isoformat()
        print(f"{entry.title}\n  id: {entry.id}\n  published: {when}")
        for provenance in entry.sources:
            print(f"  source: {provenance.source} [{without_credentials(str(provenance))}]")
        for topic in topics:
            verdict = topic.judge_entry(entry)
            mark = "yes" if verdict.matched else "no "
            print(f"  {mark} {verdict}")
            # As the last run labelled it (the rules or hints may have changed since:
            # found by review, a story the new rules take was said to be too old).
            labelled = topic.slug in entry.topics
            if verdict.matched and not labelled:
                print(
                    "      (not so when the last run judged it, with the rules or hints "
                    "as they were: the next 'aggregator run' adds it to "
                    f"feeds/{topic.slug}.*)"
                )
            elif labelled and not verdict.matched:
                print(
                    "      (so when the last run judged it, with the rules or hints as "
                    "they were: the next 'aggregator run' takes it out of "
                    f"feeds/{topic.slug}.*)"
                )
            elif verdict.matched and entry.id not in shown[topic.slug]:
                print(
                    f"      (older than the topic's newest {limit} stories: not in "
                    f"feeds/{topic.slug}.*, which show only those; [feeds] max_entries)"
                )
        print()
    return EXIT_OK


def cmd_topics_evaluate(args: argparse.Namespace) -> int:
    from aggregator.config import load_config
    from aggregator.topic_eval import evaluate, load_labels, report
    from aggregator.topics import topics_from_config

    config = load_config(Path(args.config or DEFAULT_CONFIG))
    scores = evaluate(topics_from_config(config), load_labels(Path(args.labels)))
    print(report(scores))
    low = [s for s in scores if s.recall < args.min_recall or s.precision < args.min_precision]
    for score in low:
        log.error(
            "%s: recall %.3f, precision %.3f; below --min-recall %g or --min-precision %g",
            score.topic,
            score.recall,
            score.precision,
            args.min_recall,
            args.min_precision,
        )
    # A threshold asked of a topic no labelled story is about is not met by default.
    unmeasured = [s for s in scores if not s.about and args.min_recall > 0]
    for score in unmeasured:
        log.error(
            "%s: no story in %s is labelled about it, so its recall cannot be measured; "
            "label some, or leave --min-recall out",
            score.topic,
            args.labels,
        )
    return EXIT_SOURCES_FAILED if low or unmeasured else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    from contextlib import asynccontextmanager
    from datetime import timedelta

    from starlette.applications import Starlette

    from aggregator.config import load_config
    from aggregator.live.state import FetchStates
    from aggregator.pipeline import (
        catch_up,
        check_setup,
        check_store,
        is_current,
        make_sandbox,
        refresh,
        rendered_version,
    )
    from aggregator.reload import (
        WATCH,
        Reload,
        handed_over,
        hold_stops_as_restarted,
        listen,
        signature,
    )
    from aggregator.schedule import Scheduler
    from aggregator.server import PortInUse, create_app, listening_config, serve
    from aggregator.store import kept_open, open_store

    path = Path(args.config or DEFAULT_CONFIG)
    # Restarted to apply an edited config: the config that restart approved, whatever
    # the file holds by now, and its sources' health (aggregator.reload).
    handed = handed_over()
    if handed is None:
        read = signature(path)  # taken first: an edit made while it loads is seen as one
        config = load_config(path)
    else:
        hold_stops_as_restarted()
        config, read = load_config(path, handed.config), handed.read

    def address(given: Config) -> tuple[str, int]:
        """Where a server with ``given`` listens: --host and --port win."""
        return args.host or given.serve.host, given.serve.port if args.port is None else args.port

    reload = Reload(path, config, read, address)
    signal.signal(signal.SIGHUP, lambda *_: reload.asked.set())  # look at the config now
    check_setup(config)
    host, port = address(config)
    try:
        # Before any work: a busy port is said at once. (Restarted to apply an edited
        # config, the server listens on the socket it had, if it is still the one.)
        listener = listen(host, port)
    except PortInUse as error:
        log.error("%s", error)
        return EXIT_PORT_IN_USE
    configured = config.feeds.base_url
    config = listening_config(config, listener)
    if config.feeds.base_url != configured:
        # A cron `aggregator run` with this config links to the configured address.
        log.warning(
            "serving at %s, but runs with %s link to %s: set [serve] host and port to "
            "where this server listens, or [feeds] base_url, so that they agree",
            config.feeds.base_url,
            config.path,
            configured,
        )
    host, port = listener.getsockname()[:2]
    with listener, make_sandbox(config) as sandbox:
        with open_store(config.store) as store:
            check_store(config, store)
            empty = store.counts()["all"] == 0
            # Files from another address (serve --port) or version are redone first.
            current = is_current(config, store, rendered_version(config, store))
        scheduler = Scheduler(config, sandbox)
        with open_store(config.store) as store:
            scheduler.remember(FetchStates(store))
        if handed is not None:
            scheduler.adopt(handed.health)
        reload.health = scheduler.handed
        if empty:
            log.info("first run: reading every source before serving")
            started = datetime.now(UTC)
            try:
                with _terminated_as_interrupted():
                    scheduler.record(refresh(config, sandbox, started, clock=_clock), started)
            except KeyboardInterrupt:  # stopped before serving: as a stop while serving
                log.warning("stopped during the first read; the next start reads again")
                return EXIT_OK
        elif not current:
            # Files written for another address (serve --port) or by another version:
            # written again from the store, before the first answer; the sources are
            # read by their jobs, as the server runs (found by review: every source was
            # read first, and a hanging one held the first answer for its deadline).
            log.info("writing the files again for this address or version")
            try:
                catch_up(config, datetime.now(UTC))
            except AggregatorError as error:
                # (Another process holding the store's lock too long, a full disk: a
                # server goes on, and tries again shortly; found by review, a restart for
                # a new feeds folder ended the server.)
                log.error("%s (serving the files as they are meanwhile)", error)
                scheduler.catch_up_soon(str(error))
        finished = True

        async def watch_config() -> None:
            """Restart to apply an edited config (aggregator.reload)."""
            import asyncio

            while not reload.requested.is_set():
                await asyncio.sleep(WATCH)
                try:
                    due = await asyncio.to_thread(reload.due)
                except Exception as error:  # never let looking stop the server
                    log.error("%s: cannot look for changes: %s", path, error)
                    continue
                if due and reload.request(listener):
                    scheduler.stop()  # no job starts; uvicorn stops (serve's ``until``)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            nonlocal finished
            import asyncio

            # (Restarted to apply an edited config, each source keeps its schedule.)
            scheduler.start(first_in=None if empty else timedelta(0), resume=handed is not None)
            watching = asyncio.create_task(watch_config())
            try:
                yield
            finally:
                watching.cancel()
                # A running read has [serve] shutdown_grace seconds from the signal.
                finished = scheduler.shutdown()

        app = create_app(
            config, scheduler.board.snapshot, lifespan, files_problem=scheduler.board.files_problem
        )
        print(
            f"aggregator: serving http://{host}:{port}/ (feeds under {config.feeds.base_url})",
            file=sys.stderr,
        )
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again
        # for whatever handler was there before; a no-op one lets us clean up (the
        # parser workers) and exit 0 after a clean stop.
        # A stop outside uvicorn's handlers (after it has stopped, before a restart)
        # cancels the restart.
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: reload.cancel())

        def stopping() -> None:
            reload.cancel()  # a stop while stopping for a restart is a stop (review)
            scheduler.stop()

        reload.listening = (str(host), int(port))
        # (Held open, the store stays in WAL mode: its readers never wait for a run.)
        with kept_open(config.store):
            serve(app, listener, config.serve, on_signal=stopping, until=reload.stopping)
    if reload.restarting:
        reload.restart()  # (abandoned reads, if any, end with this process image)
    if not finished:
        # Reads past the grace period were abandoned and will never write; their
        # threads would hold the interpreter's exit until their fetch deadline.
        logging.shutdown()
        os._exit(EXIT_OK)
    return EXIT_OK


SERVE_EXAMPLE = """\
Each source is read on its own schedule ([schedule] in the config); the feeds are
rewritten when something changed. An edited config (aggregator sources add, say) is
applied within seconds, by a restart in place that refuses no connection; SIGHUP looks
at the config at once. SIGTERM or Ctrl-C stops it cleanly.

exit codes: 0 stopped by SIGTERM or Ctrl-C; 2 bad configuration or usage; 4 the store
could not be opened or written at the start (feeds that cannot be written are said, and
it goes on serving); 5 the port is in use (or the host is no name)

examples:
  aggregator serve
  aggregator serve --port 8081
  curl -i http://127.0.0.1:8080/feeds/ukraine.rss
"""
EXPLAIN_EXAMPLE = """\
examples:
  aggregator explain "Secretary General in Kyiv"
  aggregator explain tag:aggregator.localhost,2026:entry:7f0b1c9445f464d158b6
(the second is the first's id: both work once a run has read the shipped seeds)
"""
TOPICS_EVALUATE_EXAMPLE = """\
LABELS is JSON Lines, one story a line:
  {"title": "…", "summary": "…", "labels": {"ukraine": "about", "deterrence": "no"}}
with a label per topic: about (a main subject), mentions (in passing), no.
Optional "sources" (configured source names, whose topics hints apply) and
"categories". Exit codes: 0 all topics at or above the thresholds; 1 below them;
2 a labels file that cannot be read (named, with its line).

examples:
  aggregator topics evaluate tests/data/topics/labels.jsonl
  aggregator topics evaluate tests/data/topics/labels.jsonl --min-recall 0.95 --min-precision 0.95
"""
PARSE_EXAMPLE = """\
examples:
  aggregator parse seeds/*
  aggregator parse --json seeds/002_698fd666a4fbe032.txt
  aggregator parse --captured 2022-11-26 seeds/004_55daeca7fe3ae366.txt
"""
RUN_EXAMPLE = """\
exit codes: 0 all good; 1 some sources failed (feeds written from the rest);
2 bad configuration or usage; 3 another run held the lock too long;
4 the feeds or the store could not be written; 130 Ctrl-C, 143 SIGTERM: stopped,
and the next run completes what this one had not

examples:
  aggregator run
  aggregator run -v
  aggregator --config /etc/aggregator/config.toml run -q
"""


class _Parser(argparse.ArgumentParser):
    """A parser whose description may be worked out only when its help is shown
    (``describe``), so that building the parser imports nothing to make it."""

    def __init__(self, *args: Any, describe: Callable[[], str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._describe = describe

    def format_help(self) -> str:
        if self._describe is not None:
            self.description, self._describe = self._describe(), None
        return super().format_help()


def _run_description() -> str:
    from aggregator.site import outputs

    return (
        "Read every source in the configuration once and write the topic feeds "
        "and the site's pages into the [feeds] directory (each file only when it changed):\n\n"
        + outputs.describe()
    )


CONFIG_HELP = f"configuration file (default: {DEFAULT_CONFIG} in the current directory)"


def build_parser(only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser.

    ``only`` names the commands to make in full (:func:`main` passes the words of its
    arguments, among which is the command); the others get their name and one-line help
    alone, which is all that ``aggregator --help``, the usage and its errors show, so
    that a run does not build the parsers of fifteen commands and subcommands it will
    not use. None: every command in full.
    """
    from aggregator import __version__

    parser = _Parser(
        prog="aggregator",
        description="Read NATO news from saved pages and feeds; write topic feeds.",
        epilog="run 'aggregator COMMAND --help' for each command\n\nexample:\n  aggregator run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    _verbosity_flags(parser)
    parser.set_defaults(verbosity=0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add) in COMMANDS.items():
        if only is not None and name not in only:
            commands.add_parser(name, help=summary, add_help=False)
            continue
        for command in add(commands, summary):
            # After the command too (`aggregator run -v`, `aggregator run --config
            # x.toml`, as people type them); unset there, the value from before the
            # command stands.
            _verbosity_flags(command, default=argparse.SUPPRESS)
            command.add_argument(
                "--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP
            )
    return parser


Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _add_parse(commands: Commands, summary: str) -> list[_Parser]:
    from aggregator.sources.commands import captured_argument

    parse = commands.add_parser(
        "parse",
        help=summary,
        description="Print the entries read from saved pages or RSS/Atom files, one per line "
        "or as JSON. "
        "Works on any file; when a file is a source in the configuration, its name, kind "
        "and capture time from there are used.",
        epilog=PARSE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parse.add_argument("paths", nargs="+", metavar="PATH", help="a saved page or a feed file")
    parse.add_argument("--json", action="store_true", help="print a JSON array of entries")
    parse.add_argument(
        "--captured",
        type=captured_argument,
        metavar="WHEN",
        help="when the pages were saved (YYYY-MM-DD or an ISO time with offset), "
        "for pages that date items by age; inferred from the page when left out",
    )
    parse.add_argument(
        "--kind",
        choices=[*sorted(LAYOUT_NAMES), "feed"],
        help="'feed' (RSS/Atom) or a page layout (default: recognised from the content)",
    )
    parse.set_defaults(handler=cmd_parse)
    return [parse]


def _add_run(commands: Commands, summary: str) -> list[_Parser]:
    run = commands.add_parser(
        "run",
        help=summary,
        describe=_run_description,  # names every output file: aggregator.site.outputs
        epilog=RUN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="ask every live source now, even one whose last answer is still fresh "
        "(Cache-Control max-age, Expires, RSS <ttl>) or that asked to wait (Retry-After)",
    )
    run.set_defaults(handler=cmd_run)
    return [run]


def _add_explain(commands: Commands, summary: str) -> list[_Parser]:
    explain = commands.add_parser(
        "explain",
        help=summary,
        description="Find stored entries by id, title or a part of the title, and show each "
        "topic's verdict with the rule, field and words that decided it.",
        epilog=EXPLAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument(
        "entry", metavar="TITLE-OR-ID", help="an entry id, a title, or words of it"
    )
    explain.set_defaults(handler=cmd_explain)
    return [explain]


def _add_topics(commands: Commands, summary: str) -> list[_Parser]:
    topics = commands.add_parser(
        "topics",
        help=summary,
        description="Commands about the [[topics]] in the configuration.",
        epilog=TOPICS_EVALUATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="COMMAND")
    evaluate = topic_commands.add_parser(
        "evaluate",
        help="recall and precision of each topic over a labelled set",
        description="Judge every labelled story with the configured topics (rules and source "
        "hints) and print, per topic, recall (of the stories about it, the share taken) and "
        "precision (of the stories taken, the share about it or mentioning it), then each "
        "miss and wrong inclusion with the rule that decided it.",
        epilog=TOPICS_EVALUATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("labels", metavar="LABELS", help="a labels file (JSON Lines)")
    for name in ("recall", "precision"):
        evaluate.add_argument(
            f"--min-{name}",
            type=_fraction,
            default=0.0,
            metavar="X",
            help=f"exit with 1 when a topic's {name} is below X (0 to 1; default 0)",
        )
    evaluate.set_defaults(handler=cmd_topics_evaluate)
    return [topics, evaluate]


def _add_serve(commands: Commands, summary: str) -> list[_Parser]:
    serve = commands.add_parser(
        "serve",
        help=summary,
        description="Read each source on its own schedule, rewrite the feeds when something "
        "changed, and serve them (with ETag/304, gzip and /healthz). Binds 127.0.0.1 unless "
        "told otherwise.",
        epilog=SERVE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (default: [serve] host)")
    serve.add_argument("--port", type=_port, help="port to listen on (default: [serve] port)")
    serve.set_defaults(handler=cmd_serve)
    return [serve]


def _fraction(text: str) -> float:
    """A threshold from 0 to 1 (argparse's error otherwise: not nan, not 2)."""
    from aggregator.topic_eval import fraction  # lazy: the parser is built on every call

    return fraction(text)


def _port(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _add_sources(commands: Commands, summary: str) -> list[_Parser]:
    from aggregator.sources.commands import add_parser  # the group lives in aggregator.sources

    return add_parser(commands, summary)


def _add_store(commands: Commands, summary: str) -> list[_Parser]:
    from aggregator.store.commands import add_parser  # and this one in aggregator.store

    return add_parser(commands, summary)


# Every command in the order ``aggregator --help`` lists them: its one-line help, and
# what makes its parser (and those of its subcommands).
COMMANDS: dict[str, tuple[str, Callable[[Commands, str], list[_Parser]]]] = {
    "parse": ("print the entries read from saved pages or feed files", _add_parse),
    "run": ("read every source in the config and write the feeds", _add_run),
    "explain": ("show why an entry is or is not in each topic", _add_explain),
    "topics": ("measure the topics against stories labelled by hand", _add_topics),
    "serve": ("keep the feeds fresh and serve them over HTTP", _add_serve),
    "sources": ("add, import, export, list, remove, disable or enable sources", _add_sources),
    "store": ("copy the store between SQLite and PostgreSQL", _add_store),
}


def _verbosity_flags(parser: argparse.ArgumentParser, **default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=1,
        dest="verbosity",
        help="say what was read and written",
        **default,  # type: ignore[arg-type]
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const=-1,
        dest="verbosity",
        help="print errors only",
        **default,  # type: ignore[arg-type]
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=set(argv))
    args = parser.parse_args(argv)
    verbosity = args.verbosity
    if args.command == "parse" and verbosity == 0:
        verbosity = 1  # interactive: say what was inferred
    _setup_logging(verbosity)
    stdout = sys.stdout
    if stdout is not None:  # None: started with its descriptor closed
        sys.stdout = cast(TextIO, _Output(stdout))
    try:
        status: int = args.handler(args)
    except _OutputFailed as failed:
        _output_failed(failed.error)
        _silence_stdout()  # what is still buffered would fail again on the way out
        return EXIT_SOURCES_FAILED
    except ConfigError as error:
        log.error("%s", error)
        return EXIT_USAGE
    except LockTimeout as error:
        log.error("%s", error)
        return EXIT_BUSY
    except (WriteError, StoreError) as error:
        log.error("%s", error)
        return EXIT_STORAGE
    except AggregatorError as error:
        log.error("%s", error)
        return EXIT_SOURCES_FAILED
    except BrokenPipeError:
        # The reader went away (``aggregator parse … | head``): stop quietly.
        _silence_stdout()
        return EXIT_SOURCES_FAILED
    except KeyboardInterrupt as stopped:
        # Ctrl-C: the store's transaction rolled back and staged files were removed on
        # the way out; a run stopped after its commit leaves the feeds for the next run.
        what = "terminated" if isinstance(stopped, _Terminated) else "interrupted"
        if args.handler in (cmd_run, cmd_serve):  # (serve reads every source first)
            log.error("%s; the next run completes what this one had not", what)
        else:
            log.error("%s", what)
        return EXIT_TERMINATED if isinstance(stopped, _Terminated) else EXIT_INTERRUPTED
    finally:
        if stdout is not None:
            sys.stdout = stdout
    return status


class _Terminated(KeyboardInterrupt):
    """SIGTERM (cron's ``timeout``, systemd stopping a unit), raised as Ctrl-C is: a run
    stops the same way, its transaction rolled back and its staged files removed."""


@contextlib.contextmanager
def _terminated_as_interrupted() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`_Terminated`."""
    import signal

    def stop(number: int, frame: object) -> None:
        raise _Terminated

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class _OutputFailed(Exception):
    """stdout refused a write, for another reason than its reader going away (a full
    disk): told apart from the command's own file errors, which name their files."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Output:
    """sys.stdout while a command runs: the same stream, but a write it refuses raises
    _OutputFailed (a closed pipe still raises BrokenPipeError)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _OutputFailed(error) from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _OutputFailed(error) from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_failed(error: OSError) -> None:
    from aggregator.errors import os_advice

    log.error("cannot write the output: %s", os_advice(error))


def _silence_stdout() -> None:
    """Send whatever stdout still holds to /dev/null (the reader is gone, or the disk is
    full): the interpreter flushes it on the way out, and would fail again."""
    with contextlib.suppress(OSError, ValueError):  # (a stream with no descriptor: tests)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def entry() -> None:
    """The ``aggregator`` command as a process: :func:`main`, then out at once.

    What a command writes is closed, made durable and committed before main returns;
    all that is left is for the interpreter to take down every module and object it
    made, 50 to 80 ms of a cron run that took 0.8 s (docs/benchmarks.md). So once the
    exit handlers have run (logging's, multiprocessing's) and the output is flushed,
    the process ends without that. With any other thread still running, it exits the
    usual way, which waits for them.
    """
    import atexit
    import threading

    try:
        code = main()
    except KeyboardInterrupt:  # before the command began (while it was loading)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write("error: interrupted\n")
        os._exit(EXIT_INTERRUPTED)
    if threading.active_count() > 1:
        sys.exit(code)
    # The command is done, its work committed: a Ctrl-C or SIGTERM now would only
    # interrupt the exit handlers, with a traceback of them (found by review, once in 22
    # Ctrl-Cs aimed at a run's end). Held until the process ends, a moment later.
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    atexit._run_exitfuncs()
    try:
        if sys.stdout is not None:  # None: started with its descriptor closed
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away: nothing more to say to it
        code = code or EXIT_SOURCES_FAILED
    except OSError as error:  # a full disk, say: one line, not a traceback
        _output_failed(error)
        code = code or EXIT_SOURCES_FAILED
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
