"""The command line, driven through its entry point: exit codes, stdout, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from aggregator.cli import main
from aggregator.site import outputs
from tests.snapshot_cases import CASES

FEEDS = Path(__file__).parent / "data" / "feeds"

ROOT = Path(__file__).resolve().parent.parent
SEED_TITLES = [
    entry["title"]
    for path in sorted(CASES.glob("seed_*.expected.json"))
    for entry in json.loads(path.read_text(encoding="utf-8"))
]


def test_parse_json(capsys: pytest.CaptureFixture[str]) -> None:
    seed = str(ROOT / "seeds" / "001_aa4e8d9c4967da98.txt")
    assert main(["parse", "--json", seed]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == 8
    first = entries[0]
    assert {"title", "published", "summary", "link", "source"} <= set(first)
    assert first["published"] == "2023-10-11"
    assert first["link"] is None
    assert first["location"] == f"{seed}:1"
    assert entries[1]["published"] is None


def test_parse_every_seed_lists_each_item_once(capsys: pytest.CaptureFixture[str]) -> None:
    seeds = sorted(str(p) for p in (ROOT / "seeds").glob("*.txt"))
    assert main(["parse", *seeds]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SEED_TITLES) == 46
    for title in SEED_TITLES:
        assert sum(f"  {title}  [" in line for line in lines) == 1, title


def test_parse_captured_overrides_inference(capsys: pytest.CaptureFixture[str]) -> None:
    seed = str(ROOT / "seeds" / "004_55daeca7fe3ae366.txt")
    assert main(["parse", "--json", "--captured", "2022-11-27", seed]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["published"] == "2022-11-10"
    assert "inferred" not in err


def test_parse_takes_name_and_capture_time_from_the_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "config.toml"
    seed = project / "seeds" / "004_55daeca7fe3ae366.txt"
    text = config.read_text(encoding="utf-8").replace(
        'path = "seeds/004_55daeca7fe3ae366.txt"',
        'path = "seeds/004_55daeca7fe3ae366.txt"\ncaptured = 2022-11-27',
    )
    config.write_text(text, encoding="utf-8")
    assert main(["--config", str(config), "parse", "--json", str(seed)]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["source"] == "NATO: news feed, November 2022"
    assert first["published"] == "2022-11-10"


def test_parse_bad_file_is_one_line_and_the_others_still_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n\nworld\n", encoding="utf-8")
    seed = str(ROOT / "seeds" / "000_459788f2e8cd103b.txt")
    assert main(["parse", str(junk), seed]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 10
    assert err.count("\n") == 1
    assert err.startswith(f"error: {junk}: text fits no known page layout")


def test_parse_rejects_bad_captured(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["parse", "--captured", "yesterday", "x.txt"])
    assert raised.value.code == 2
    assert "--captured" in capsys.readouterr().err


def read_feed(path: Path) -> feedparser.FeedParserDict:
    with path.open("rb") as file:
        parsed = feedparser.parse(file)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_run_writes_valid_feeds(project: Path) -> None:
    assert main(["--config", str(project / "config.toml"), "run"]) == 0
    feeds = project / "feeds"
    names = sorted(p.name for p in feeds.iterdir())
    slugs = ("all", "ukraine", "deterrence", "eu-cooperation")
    assert names == sorted([*outputs.fixed_files(slugs), "entries", outputs.TOKEN])
    assert {f"{slug}.{ext}" for slug in slugs for ext in ("rss", "atom", "json")} <= set(names)
    for slug in ("all", "ukraine", "deterrence", "eu-cooperation"):
        rss, atom = read_feed(feeds / f"{slug}.rss"), read_feed(feeds / f"{slug}.atom")
        assert rss.version == "rss20"
        assert atom.version == "atom10"
        assert [e.title for e in rss.entries] == [e.title for e in atom.entries]
        assert [e.id for e in rss.entries] == [e.id for e in atom.entries]
        self_links = [link.href for link in atom.feed.links if link.rel == "self"]
        assert self_links == [f"http://127.0.0.1:8080/feeds/{slug}.atom"]
        for entry in atom.entries:
            assert entry.id.startswith("tag:aggregator.localhost,2026:entry:")
    everything = read_feed(feeds / "all.rss")
    live = [e["title"] for e in json.loads((FEEDS / "rss20.expected.json").read_text("utf-8"))]
    # Two live stories are also in the seeds (same title, same day): one entry each.
    titles = [e.title for e in everything.entries]
    assert sorted(titles) == sorted(set(SEED_TITLES + live))
    assert len(titles) == 46 + 3 - 2
    kyiv = next(e for e in everything.entries if e.title.startswith("Secretary General in Kyiv"))
    assert kyiv.link == "https://www.nato.int/cps/en/natohq/news_218172.htm"
    assert kyiv.published == "Thu, 28 Sep 2023 14:05:00 +0200"
    tree = etree.parse(str(feeds / "all.rss"))
    assert tree.xpath("//guid[@isPermaLink='true']") == []
    # The evergreen pages of 001, and the live feed's undated item.
    assert len(tree.xpath("//item[not(pubDate)]")) == 4


def test_topic_feeds_hold_the_entries_about_them(project: Path) -> None:
    assert main(["--config", str(project / "config.toml"), "run"]) == 0
    ukraine = read_feed(project / "feeds" / "ukraine.rss")
    titles = {e.title for e in ukraine.entries}
    assert "Secretary General in Kyiv: Ukraine is closer to NATO than ever before" in titles
    assert "NATO holds long-planned annual nuclear exercise" not in titles
    for entry in ukraine.entries:
        assert "ukraine" in [tag.term for tag in entry.tags]
    eu = {e.title for e in read_feed(project / "feeds" / "eu-cooperation.rss").entries}
    assert "Secretary General: NATO-EU cooperation has reached unprecedented levels" in eu
    assert "Moldova hosts meeting on defence cooperation with NATO partners" not in eu


def test_run_with_a_broken_source_writes_the_others(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[sources]]\nname = "gone"\npath = "seeds/missing.txt"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"error: gone ({project / 'seeds' / 'missing.txt'}): no such file; "
        "check sources[7].path in the config"
    )
    assert "1 of 7 sources failed" in err[1]
    assert len(read_feed(project / "feeds" / "all.rss").entries) == 46 + 3 - 2


def test_a_run_whose_every_source_failed_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by review: "1 of 1 sources failed; the feeds were written from the others".
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nname = "gone"\npath = "missing.txt"\n', encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == ["error: the source failed; the feeds still show what the store held"]


def test_parse_given_an_address_says_how_to_follow_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Found by review: "http://host/feed.xml (http:/host/feed.xml): no such file".
    assert main(["parse", "https://nato.example/feed.xml"]) == 1
    assert capsys.readouterr().err == (
        "error: https://nato.example/feed.xml: parse reads saved files; to follow a feed at "
        "an address, run 'aggregator sources add https://nato.example/feed.xml'\n"
    )


def test_a_missing_file_url_names_the_url_setting(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = project / "seeds" / "missing.txt"
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[[sources]]\nname = "gone"\nurl = "{missing.as_uri()}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "run"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: gone ({missing}): no such file; check sources[7].url in the config"


def test_run_with_bad_config_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("slug = ", "slgu = ", 1))
    assert main(["--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {config}: topics[1].slgu: unknown setting " + (
        "(expected one of: slug, title, description, terms, patterns, fields, rules, exclude, "
        "exclude_patterns, exclude_fields)\n"
    )
    assert not (project / "feeds").exists()


def test_console_script_help_has_examples() -> None:
    for command in (
        ["--help"],
        *([name, "--help"] for name in ("parse", "run", "explain", "serve")),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", *command],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "example" in done.stdout
        assert "aggregator " in done.stdout.split("example")[1]


def test_the_explain_examples_work_on_the_shipped_config(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by review: the example id was a placeholder, and said "no entry"."""
    import shlex

    from aggregator.cli import EXPLAIN_EXAMPLE

    config = str(project / "config.toml")
    assert main(["--config", config, "run"]) == 0
    examples = [line.split() for line in EXPLAIN_EXAMPLE.splitlines() if "aggregator " in line]
    assert len(examples) == 2
    shown = []
    for line in EXPLAIN_EXAMPLE.splitlines():
        if line.strip().startswith("aggregator "):
            capsys.readouterr()
            assert main(["--config", config, *shlex.split(line)[1:]]) == 0, line
            shown.append(capsys.readouterr().out.splitlines()[:2])
    assert shown[0] == shown[1]  # the same story, by its title and by its id


# As cron runs a command: its output buffered (a pipe, no PYTHONUNBUFFERED).
BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    """``aggregator ARGS`` in a process of its own, as cron or a shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        env=BUFFERED,
        timeout=120,
        check=False,
    )


def test_the_command_as_a_process_leaves_everything_written(project: Path) -> None:
    # The process ends without tearing the interpreter down (cli.entry): what the run
    # wrote must all be there, the store readable by the next run, the exit code kept.
    done = _command("--config", str(project / "config.toml"), "run")
    assert (done.returncode, done.stderr) == (0, "")
    assert len(read_feed(project / "feeds" / "all.rss").entries) == 46 + 3 - 2
    again = _command("-v", "--config", str(project / "config.toml"), "run")
    assert again.returncode == 0
    assert "0 new and 0 updated entries" in again.stderr
    broken = project / "broken.toml"
    broken.write_text("[feeds\n", encoding="utf-8")
    done = _command("--config", str(broken), "run")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {broken}")


def test_the_command_as_a_process_says_all_it_has_to_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A long answer down a pipe arrives whole, and exit handlers still run.
    seeds = sorted(str(path) for path in (ROOT / "seeds").glob("*.txt"))
    assert main(["parse", "--json", *seeds]) == 0
    said = capsys.readouterr().out
    done = _command("parse", "--json", *seeds)
    assert done.returncode == 0
    assert done.stdout == said
    assert len(json.loads(said)) == len(SEED_TITLES)
    script = (
        "import atexit, sys\n"
        "atexit.register(print, 'exit handlers ran')\n"
        "from aggregator.cli import entry\n"
        "sys.argv = ['aggregator', 'parse', '--json', sys.argv[1]]\n"
        "entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, seeds[0]],
        capture_output=True,
        text=True,
        env=BUFFERED,
        timeout=120,
    )
    assert done.returncode == 0
    answer, _, last = done.stdout.rstrip("\n").rpartition("\n")
    assert last == "exit handlers ran"
    assert json.loads(answer) == json.loads(_command("parse", "--json", seeds[0]).stdout)


@pytest.mark.parametrize(
    ("seeds", "unbuffered"),
    [
        pytest.param("001_*.txt", False, id="refused at the last flush"),
        pytest.param("*.txt", False, id="refused while writing (30 KB)"),
        pytest.param("001_*.txt", True, id="refused while writing (unbuffered)"),
    ],
)
def test_the_command_says_so_in_one_line_when_its_output_cannot_be_written(
    seeds: str, unbuffered: bool
) -> None:
    files = sorted(str(path) for path in (ROOT / "seeds").glob(seeds))
    env = {**BUFFERED, "PYTHONUNBUFFERED": "1"} if unbuffered else BUFFERED
    with Path(os.devnull).open("rb") as nothing, Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "aggregator", "parse", "--json", *files],
            stdin=nothing,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    # (parse says what it inferred on stderr first: the error is the last line)
    assert done.stderr.splitlines()[-1] == (
        "error: cannot write the output: the disk is full; free some space and run again"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("closing", [">&-", "2>&-"])
def test_the_command_runs_with_its_output_closed(project: Path, closing: str) -> None:
    # A supervisor may start it with stdout or stderr closed: Python's stream is None.
    config = str(project / "config.toml")
    command = [sys.executable, "-m", "aggregator", "--config", config, "run"]
    done = subprocess.run(
        ["sh", "-c", f'exec "$@" {closing}', "sh", *command],
        capture_output=True,
        text=True,
        env=BUFFERED,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(read_feed(project / "feeds" / "all.rss").entries) == 46 + 3 - 2


def test_parse_reads_feed_files_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--json", str(FEEDS / "atom10.xml")]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["published"] for e in entries] == ["2024-02-16T18:00:00+01:00", "2024-02-14"]
    assert entries[0]["link"] == "https://www.nato.int/atom/news/4.htm"


def test_run_reads_local_feed_files_by_path_and_file_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[sources]]\npath = "{FEEDS / "rss10.rdf"}"\n\n'
        f'[[sources]]\nurl = "file://{FEEDS / "atom03.xml"}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "run"]) == 0
    titles = {e.title for e in read_feed(tmp_path / "feeds" / "all.atom").entries}
    assert titles == {"Defence Ministers meet in Brussels", "NATO steps up Baltic Sea patrols"}
    assert capsys.readouterr().err == ""


def test_run_is_quiet_when_all_is_well_and_says_more_with_v(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "config.toml")
    assert main(["--config", config, "run"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["-v", "--config", config, "run"]) == 0
    err = capsys.readouterr().err
    # Its <ttl> says the feed is still fresh: not asked at all.
    assert "info: NATO news feed: 0 entries (fresh until " in err
    assert "info: 0 new and 0 updated entries" in err


def test_a_second_run_waits_for_the_lock_then_gives_up(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aggregator.lock import exclusive

    config = project / "config.toml"
    text = config.read_text("utf-8").replace("[store]\n", "[store]\nlock_timeout = 0.3\n", 1)
    config.write_text(text, "utf-8")
    lock = project / "state" / "aggregator.sqlite3.lock"
    with exclusive(lock, wait=0):
        assert main(["--config", str(config), "run"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{lock}: another aggregator run or server is writing (process " in err
    assert "did not finish within 0.3 s; nothing was done" in err
    assert not (project / "feeds").exists()
    assert main(["--config", str(config), "run"]) == 0


def test_a_stop_once_the_command_is_done_is_no_traceback() -> None:
    """Ctrl-C (or SIGTERM) arriving while a finished command's exit handlers run: its
    work is done and committed, so it exits as it would have, without a traceback of
    the handler it interrupted (found by review, once in 22 Ctrl-Cs aimed at a run's
    end). Here an exit handler sends the signal itself, every time."""
    script = (
        "import atexit, os, signal, sys\n"
        "from aggregator import cli\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
        f"sys.argv = ['aggregator', '--config', {str(ROOT / 'config.toml')!r}, 'sources', 'list']\n"
        "cli.entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "NATO news feed" in done.stdout


def test_config_is_taken_after_the_command_too(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aggregator run --config x.toml`, as people type it (found by review: argparse's
    bare "unrecognized arguments"); given both before and after, the one after wins."""
    config = str(project / "config.toml")
    assert main(["run", "--config", config, "-q"]) == 0
    assert (project / "feeds" / "all.rss").exists()
    capsys.readouterr()
    assert main(["--config", "nowhere.toml", "sources", "list", "--config", config]) == 0
    assert "NATO news feed" in capsys.readouterr().out
