from __future__ import annotations

import json
import re
from pathlib import Path

import feedparser
import pytest

from aggregator.config import RuleConfig, TopicConfig, load_config
from aggregator.errors import ConfigError
from aggregator.pipeline import topics_fingerprint
from aggregator.source import parse_source
from aggregator.topics import Topic, fields_of, topics_from_config

ROOT = Path(__file__).resolve().parent.parent


def topic(
    terms: tuple[str, ...] = (),
    patterns: tuple[str, ...] = (),
    fields: tuple[str, ...] = ("title", "summary"),
    exclude: tuple[str, ...] = (),
) -> Topic:
    rule = RuleConfig("topics[1]", terms, patterns, fields)
    excluded = RuleConfig("topics[1].exclude", exclude) if exclude else None
    config = TopicConfig("t", "topics[1]", "T", "", rules=(rule,), exclude=excluded)
    return Topic.from_config(config)


@pytest.mark.parametrize(
    ("rules", "title", "summary", "matched"),
    [
        pytest.param({"terms": ("EU",)}, "NATO-EU cooperation", "", True, id="hyphenated word"),
        pytest.param({"terms": ("EU",)}, "European security", "", False, id="not inside a word"),
        pytest.param({"terms": ("ukraine",)}, "UKRAINE", "", True, id="any case"),
        pytest.param({"terms": ("Ukraine",)}, "Ukraine’s air defence", "", True, id="possessive"),
        pytest.param({"terms": ("Russia's war",)}, "", "Russia’s war", True, id="curly quote"),
        pytest.param({"terms": ("air defence",)}, "more air\u00a0 defence", "", True, id="spaces"),
        pytest.param({"patterns": (r"\bKyiv\b",)}, "", "visited Kyiv today", True, id="pattern"),
        pytest.param(
            {"patterns": ("secretary general", r"nato\s+air")},
            "Secretary\u00a0General visits",
            "",
            True,
            id="a pattern's space is a no-break space too (found by review)",
        ),
        pytest.param(
            {"patterns": (r"nato\s+air",)},
            "",
            "NATO\u202fair defence",
            True,
            id="RE2's \\s is any space a writer chose",
        ),
        pytest.param(
            {"terms": ("Ukraine",), "exclude": ("football",)},
            "Ukraine football match",
            "",
            False,
            id="excluded",
        ),
        pytest.param(
            {"terms": ("Ukraine",), "fields": ("title",)},
            "Summit",
            "Ukraine",
            False,
            id="field not searched",
        ),
    ],
)
def test_rules(rules: dict[str, tuple[str, ...]], title: str, summary: str, matched: bool) -> None:
    assert topic(**rules).matches({"title": title, "summary": summary}) is matched


def test_exclusion_wins_and_says_so() -> None:
    verdict = topic(terms=("Ukraine",), exclude=("football",)).judge(
        {"title": "Ukraine football", "summary": ""}
    )
    assert str(verdict) == (
        "t: excluded by exclude term 'football' in title: 'football' (topics[1].exclude)"
    )


def test_verdict_names_rule_field_and_words() -> None:
    verdict = topic(terms=("Kyiv", "Ukraine")).judge({"title": "Visit", "summary": "in Kyiv"})
    assert verdict.matched
    assert (verdict.rule, verdict.field, verdict.words) == ("term 'Kyiv'", "summary", "Kyiv")
    assert str(verdict) == "t: matched by term 'Kyiv' in summary: 'Kyiv' (topics[1])"


def test_shipped_topics_hold_exactly_the_seed_stories_about_them() -> None:
    """tests/data/topics/seeds.expected.json lists, per topic, the seed stories the shipped
    config.toml puts in it: by its rules, or because the source is NATO's own listing of
    that topic (a source hint). Read by hand against the rubric in labels.jsonl."""
    config = load_config(ROOT / "config.toml")
    topics = topics_from_config(config)
    found: dict[str, list[str]] = {t.slug: [] for t in topics}
    for source in config.sources:
        if source.path is None:
            continue
        for item in parse_source(source.path.read_bytes(), url=str(source.path), name=source.name):
            for t in topics:
                if t.matches(fields_of(item.title, item.summary), [item.source]):
                    found[t.slug].append(item.title)
    expected = json.loads((ROOT / "tests/data/topics/seeds.expected.json").read_text("utf-8"))
    assert found == expected


def test_a_source_hint_takes_every_story_of_that_source_and_beats_exclusions() -> None:
    rule = RuleConfig("topics[1]", ("deterrence",), (), ("title",))
    excluded = RuleConfig("topics[1].exclude", ("partners",))
    config = TopicConfig("d", "topics[1]", "D", "", rules=(rule,), exclude=excluded)
    hinted = Topic.from_config(config, sources=["NATO: deterrence and defence"])
    story = fields_of("Moldova hosts meeting with NATO partners", "")
    verdict = hinted.judge(story, ["another page", "NATO: deterrence and defence"])
    assert verdict.matched
    assert str(verdict) == "d: matched by the source hint of 'NATO: deterrence and defence'"
    assert not hinted.judge(story, ["another page"]).matched
    assert not hinted.judge(story).matched


def test_a_stored_story_keeps_the_topics_of_every_source_that_told_it() -> None:
    from datetime import UTC, datetime

    from aggregator.model import Entry, Provenance

    rule = RuleConfig("topics[1]", ("nothing here",))
    config = TopicConfig("eu", "topics[1]", "EU", "", rules=(rule,))
    topic = Topic.from_config(config, sources=["EU page"])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    entry = Entry(
        "id", "A story", None, "", (Provenance("feed", "x"), Provenance("EU page", "y")), now, now
    )
    assert topic.judge_entry(entry).source == "EU page"


def test_rules_can_look_in_categories() -> None:
    rule = RuleConfig("topics[1]", ("Deterrence and defence",), (), ("categories",))
    topic = Topic.from_config(TopicConfig("d", "topics[1]", "D", "", rules=(rule,)))
    tagged = fields_of("Ships clear mines", "", ["Operations", "Deterrence and defence"])
    verdict = topic.judge(tagged)
    assert (verdict.matched, verdict.field) == (True, "categories")
    assert not topic.matches(fields_of("Deterrence and defence", "", ["Operations"]))
    # A phrase never runs from one category into the next.
    assert not topic.matches(fields_of("x", "", ["Nuclear deterrence", "and defence"]))


def config_text(hint: str) -> str:
    return (
        f'[[sources]]\nname = "page"\npath = "page.txt"\ntopics = [{hint}]\n'
        '[[topics]]\nslug = "ukraine"\nterms = ["Kyiv"]\nfields = ["title", "categories"]\n'
    )


def test_source_hints_must_name_configured_topics(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text('"ukraine", "deterence"'), "utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: sources[1].topics[2]: no topic 'deterence' (expected one of: ukraine)"
    )


def test_changing_a_source_hint_rejudges_stored_stories(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text('"ukraine"'), "utf-8")
    hinted = load_config(path)
    assert hinted.sources[0].topics == ("ukraine",)
    assert hinted.topics[0].rules[0].fields == ("title", "categories")
    path.write_text(config_text(""), "utf-8")
    assert topics_fingerprint(hinted) != topics_fingerprint(load_config(path))


@pytest.mark.parametrize(
    "pattern", [pytest.param(r"(a+)+$", id="nested"), pytest.param(r"(\w+\s?)+$", id="words")]
)
def test_patterns_that_backtrack_forever_in_python_re_still_answer(pattern: str) -> None:
    # With a backtracking engine each of these takes exponential time on this text
    # (it would never finish); the linear engine answers at once.
    text = "a" * 5000 + "!" if pattern.startswith("(a") else "word " * 5000 + "!"
    assert topic(patterns=(pattern,)).matches({"title": text, "summary": ""}) is False
    assert topic(patterns=(pattern,)).matches({"title": "aaaa", "summary": ""}) is True


def test_explain_names_the_source_hint_or_the_rule_behind_every_verdict(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aggregator.cli import main

    config = str(project / "config.toml")
    assert main(["--config", config, "run"]) == 0
    capsys.readouterr()
    # Told by NATO's deterrence listing (hinted) and by the live feed: it keeps the hint.
    assert main(["--config", config, "explain", "long-planned annual nuclear exercise"]) == 0
    out = capsys.readouterr().out
    assert "source: NATO news feed" in out
    assert "yes deterrence: matched by the source hint of 'NATO: deterrence and defence'" in out
    assert "no  ukraine: no rule matched" in out
    assert main(["--config", config, "explain", "Moldova hosts meeting on defence"]) == 0
    out = capsys.readouterr().out
    assert "yes deterrence: matched by the source hint of 'NATO: deterrence and defence'" in out
    assert main(["--config", config, "explain", "Baltic Sea patrols"]) == 0
    assert (
        "yes deterrence: matched by term 'patrols' in title: 'patrols' (topics[2])"
        in capsys.readouterr().out
    )


def test_explain_says_when_a_story_in_a_topic_is_past_its_feeds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A story the topic takes, older than the topic's newest max_entries, is in none of
    its feeds: explain says so, instead of a bare "yes"."""
    from aggregator.cli import main

    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("max_entries = 100", "max_entries = 2"), encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    ukraine = feedparser.parse((project / "feeds" / "ukraine.rss").read_bytes())
    shown = {entry.title for entry in ukraine.entries}
    capsys.readouterr()
    assert main(["--config", str(config), "explain", "Ukraine"]) == 0
    out = capsys.readouterr().out
    stories = out.strip().split("\n\n")
    past = [s for s in stories if "older than the topic's newest 2 stories" in s]
    assert past  # the shipped seeds have more than two Ukraine stories
    for story in stories:
        title = story.splitlines()[0]
        in_ukraine = "\n  yes ukraine:" in story
        note = "not in feeds/ukraine.*" in story
        assert note == (in_ukraine and title not in shown), story


def test_explain_says_when_the_rules_changed_since_the_last_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rules edited after the last run: a story the new rules take is not in the feeds
    yet, and one they leave still is; explain said the first was too old (found by
    review). It says the next run adds or takes it out."""
    from aggregator.cli import main

    config = project / "config.toml"
    assert main(["--config", str(config), "run"]) == 0
    ukraine = feedparser.parse((project / "feeds" / "ukraine.rss").read_bytes())
    taken_out = ukraine.entries[0].title
    text = config.read_text(encoding="utf-8")
    # The last topic (EU cooperation) takes the Baltic Sea patrols; Ukraine leaves its
    # newest story.
    edited = text.replace(
        'slug = "ukraine"\n', f'slug = "ukraine"\nexclude = [{json.dumps(taken_out)}]\n', 1
    )
    assert edited != text
    slug = re.findall(r'^slug = "(.+)"', text, re.MULTILINE)[-1]
    edited += '\n  [[topics.rules]]\n  terms = ["Baltic Sea patrols"]\n'
    config.write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "explain", "Baltic Sea patrols"]) == 0
    out = capsys.readouterr().out
    assert f"yes {slug}: " in out, out
    assert "older than" not in out
    assert (
        "(not so when the last run judged it, with the rules or hints as they were: the "
        f"next 'aggregator run' adds it to feeds/{slug}.*)" in out
    ), out
    assert main(["--config", str(config), "explain", taken_out]) == 0
    out = capsys.readouterr().out
    assert "no  ukraine" in out, out
    assert (
        "(so when the last run judged it, with the rules or hints as they were: the next "
        "'aggregator run' takes it out of feeds/ukraine.*)" in out
    ), out
    # The next run does as it said.
    assert main(["--config", str(config), "run"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "explain", "Baltic Sea patrols"]) == 0
    assert "the next 'aggregator run'" not in capsys.readouterr().out


def test_a_topic_taken_out_of_the_config_takes_its_feeds_with_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Left on disk, a removed topic's feeds would be served frozen to its subscribers
    by any web server: the run removes them, and says so."""
    from aggregator.cli import main

    config = project / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    config.write_text(
        shipped + '\n[[topics]]\nslug = "moldova"\ntitle = "Moldova"\nterms = ["Moldova"]\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "run"]) == 0
    feeds = project / "feeds"
    files = ["moldova.rss", "moldova.atom", "moldova.json", "moldova.html"]
    assert all((feeds / name).exists() for name in files)
    kept = {p.name: p.read_bytes() for p in feeds.glob("ukraine.*")}
    config.write_text(shipped, encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "run"]) == 0
    assert not any((feeds / name).exists() for name in files)
    assert {p.name: p.read_bytes() for p in feeds.glob("ukraine.*")} == kept
    assert "warning: topic 'moldova' is no longer in the config: removed" in capsys.readouterr().err
    assert main(["--config", str(config), "run"]) == 0  # nothing more to remove, no error


def test_a_topic_dropped_after_a_run_stopped_before_its_install_still_goes(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stopped after its commit, before its files were renamed (a kill, a
    Ctrl-C), leaves no trusted record of what the files show: the topics whose files
    may be on disk are kept apart, so the next run still removes a dropped topic's
    files (found by review: they stayed, frozen, for ever)."""
    from aggregator import output
    from aggregator.cli import main

    config = project / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    moldova = '\n[[topics]]\nslug = "moldova"\ntitle = "Moldova"\nterms = ["Moldova"]\n'
    config.write_text(shipped + moldova, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    feeds = project / "feeds"
    files = ["moldova.rss", "moldova.atom", "moldova.json", "moldova.html"]
    assert all((feeds / name).exists() for name in files)

    def stopped(self: output.Staged) -> list[Path]:
        self.discard()
        raise KeyboardInterrupt

    changed = moldova.replace('["Moldova"]', '["Moldova", "Chisinau"]')  # renders again
    config.write_text(shipped + changed, encoding="utf-8")
    monkeypatch.setattr(output.Staged, "install", stopped)
    assert main(["--config", str(config), "run"]) == 130
    monkeypatch.undo()
    config.write_text(shipped, encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "run"]) == 0
    assert not any((feeds / name).exists() for name in files)
    assert "warning: topic 'moldova' is no longer in the config: removed" in capsys.readouterr().err
    assert main(["--config", str(config), "run"]) == 0
    assert "no longer in the config" not in capsys.readouterr().err


def test_a_dropped_topic_file_that_could_not_be_removed_is_tried_again(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of a dropped topic that could not be removed (said in a warning) stays in
    the record: the next run that renders removes it (found by review)."""
    from aggregator.cli import main

    config = project / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    moldova = '\n[[topics]]\nslug = "moldova"\ntitle = "Moldova"\nterms = ["Moldova"]\n'
    config.write_text(shipped + moldova, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    stuck = project / "feeds" / "moldova.rss"
    real_unlink = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    config.write_text(shipped, encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "run"]) == 0
    assert stuck.exists() and "moldova.rss: cannot remove" in capsys.readouterr().err
    monkeypatch.undo()
    other = moldova.replace("moldova", "chisinau").replace("Moldova", "Chisinau")
    config.write_text(shipped + other, encoding="utf-8")  # a change: the next run renders
    assert main(["--config", str(config), "run"]) == 0
    assert not stuck.exists()
    assert "topic 'moldova' is no longer in the config: removed moldova.rss" in (
        capsys.readouterr().err
    )


def test_a_topic_dropped_by_a_run_stopped_before_removing_it_goes_in_the_next_run(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after its install was recorded, before the dropped topic's files were
    removed: the next run, with nothing to render, removes them (found by review)."""
    from aggregator import pipeline
    from aggregator.cli import main

    config = project / "config.toml"
    shipped = config.read_text(encoding="utf-8")
    moldova = '\n[[topics]]\nslug = "moldova"\ntitle = "Moldova"\nterms = ["Moldova"]\n'
    config.write_text(shipped + moldova, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    files = [project / "feeds" / f"moldova.{kind}" for kind in ("rss", "atom", "json", "html")]

    def killed(directory: Path, slugs: set[str]) -> set[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_remove_dropped_topics", killed)
    config.write_text(shipped, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 130
    assert all(path.exists() for path in files)
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["--config", str(config), "run"]) == 0
    err = capsys.readouterr().err
    assert not any(path.exists() for path in files)
    assert "topic 'moldova' is no longer in the config: removed" in err
    assert main(["--config", str(config), "run"]) == 0
    assert "no longer in the config" not in capsys.readouterr().err


def test_pages_of_stories_past_every_feed_follow_a_topic_change(project: Path) -> None:
    """A web server still serves the page of a story that left every feed (old items in
    readers link to it): when the topics change, the run renders it again, so it does
    not name topics the story is no longer (or not yet) in."""
    from lxml import html as lxml_html

    from aggregator.cli import main

    config = project / "config.toml"
    assert main(["--config", str(config), "run"]) == 0
    pages = {p.name: p.read_bytes() for p in (project / "feeds" / "entries").iterdir()}
    text = config.read_text(encoding="utf-8")
    assert text.count('terms = [\n    "EU",\n') == 1  # the EU cooperation topic's
    changed = text.replace("max_entries = 100", "max_entries = 2").replace(
        'terms = [\n    "EU",\n', 'terms = [\n    "COP27",\n    "EU",\n'
    )
    config.write_text(changed, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    feeds = set()
    for slug in ("all", "ukraine", "deterrence", "eu-cooperation"):
        feed = feedparser.parse((project / "feeds" / f"{slug}.rss").read_bytes())
        feeds |= {entry.title for entry in feed.entries}
    cop27 = []
    for name in pages:
        page = lxml_html.fromstring((project / "feeds" / "entries" / name).read_bytes())
        title = page.xpath("string(//h1)")
        if "COP27" in page.text_content():
            cop27.append((title, page.xpath("//ul[@class='topics']/li/a/text()")))
    assert cop27 and all(title not in feeds for title, _ in cop27)  # past every feed
    assert all("EU cooperation" in topics for _, topics in cop27), cop27
