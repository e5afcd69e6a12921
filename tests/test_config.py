from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest

from aggregator.config import MAX_NAME_BYTES, load_config
from aggregator.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
[[sources]]
path = "page.txt"

[[topics]]
slug = "ukraine"
terms = ["Ukraine"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads() -> None:
    config = load_config(ROOT / "config.toml")
    assert [t.slug for t in config.topics] == ["ukraine", "deterrence", "eu-cooperation"]
    files = [source.path for source in config.sources if source.path is not None]
    assert len(files) == 5
    assert all(path.exists() for path in files)
    assert [s.url for s in config.sources if s.url] == [
        "https://www.nato.int/cps/rss/en/natohq/rssFeed.xsl/rssFeed.xml"
    ]
    assert config.feeds.directory == ROOT / "feeds"


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.sources[0].path == tmp_path / "page.txt"
    assert config.sources[0].name == "page.txt"


@pytest.mark.parametrize(
    "pattern",
    [
        "nuclear|deterrence",
        r"\bNATO\b",
        r"^\s*$",  # anchored: it matches empty text, not every story (an empty summary)
        "^.{0,15}$",
        "^[^a-z]*$",
    ],
)
def test_patterns_that_do_not_match_every_story_are_kept(tmp_path: Path, pattern: str) -> None:
    as_toml = pattern.replace("\\", "\\\\")  # a TOML basic string doubles backslashes
    text = MINIMAL.replace('terms = ["Ukraine"]', f'terms = ["Ukraine"]\npatterns = ["{as_toml}"]')
    [topic] = load_config(write(tmp_path, text)).topics
    assert topic.rules[0].patterns == (pattern,)


def test_file_urls_read_as_browsers_write_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "saved pages" / "d ig€st.txt"
    text = MINIMAL.replace('path = "page.txt"', f'url = "{page.as_uri()}"')
    assert load_config(write(tmp_path, text)).sources[0].path == page
    relative = MINIMAL.replace('path = "page.txt"', 'url = "file:saved%20pages/a.txt"')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the config's folder, not the working directory
    assert load_config(write(tmp_path, relative)).sources[0].path == page.with_name("a.txt")


def test_a_long_interval_moves_the_backoff_cap_with_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[schedule]\ninterval_minutes = 1440\n" + MINIMAL))
    assert config.schedule.max_backoff_minutes == 1440
    assert load_config(write(tmp_path, MINIMAL)).schedule.max_backoff_minutes == 360
    short = "[schedule]\ninterval_minutes = 1440\nmax_backoff_minutes = 60\n" + MINIMAL
    with pytest.raises(ConfigError, match=r"schedule\.max_backoff_minutes: must be at least"):
        load_config(write(tmp_path, short))


def test_captured_as_toml_date(tmp_path: Path) -> None:
    text = MINIMAL.replace('path = "page.txt"', 'path = "page.txt"\ncaptured = 2022-11-26')
    assert load_config(write(tmp_path, text)).sources[0].captured == date(2022, 11, 26)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine"]\npatterns = ["(unclosed"]'),
            "topics[1].patterns[1]",
            "invalid regular expression",
            id="bad regex",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine"]\nfields = ["body"]'),
            "topics[1].fields",
            "unknown field 'body'",
            id="unknown field",
        ),
        pytest.param(
            ('path = "page.txt"', 'path = "page.txt"\ncaptrued = 2022-11-26'),
            "sources[1].captrued",
            "unknown setting",
            id="misspelt key",
        ),
        pytest.param(
            ('path = "page.txt"', 'path = "page.txt"\ncaptured = 2022-11-26T10:00:00'),
            "sources[1].captured",
            "no UTC offset",
            id="naive capture time",
        ),
        pytest.param(
            ('path = "page.txt"', 'url = "http://[::1/feed"'),
            "sources[1].url",
            "'http://[::1/feed' is not a URL (Invalid IPv6 URL)",
            id="a URL Python cannot split (found by review)",
        ),
        pytest.param(
            ('path = "page.txt"', 'path = "page.txt"\ncaptured = 0001-01-01'),
            "sources[1].captured",
            "0001-01-01 is before any web page was saved",
            id="capture before the web",
        ),
        pytest.param(
            ('path = "page.txt"', 'path = "page.txt"\ncaptured = "yesterday"'),
            "sources[1].captured",
            "'yesterday' is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM+01:00",
            id="capture in words",
        ),
        pytest.param(
            ('slug = "ukraine"', 'slug = "Ukraine News"'),
            "topics[1].slug",
            "cannot name a feed",
            id="bad slug",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', "terms = []"),
            "topics[1]",
            "a topic needs terms or patterns",
            id="topic without rules",
        ),
        pytest.param(
            ('[[sources]]\npath = "page.txt"', '[feeds]\nbase_url = "feeds/"\n'),
            "feeds.base_url",
            "absolute http(s) URL",
            id="relative base url",
        ),
        pytest.param(
            ("[[sources]]", "[[sources]]\nname = 3"),
            "sources[1].name",
            "non-empty string",
            id="wrong type",
        ),
        pytest.param(
            ('slug = "ukraine"', 'slug = "all"'),
            "topics[1].slug",
            "cannot name a feed",
            id="reserved slug",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine"]\npatterns = ["nuclear|deterrence|"]'),
            "topics[1].patterns[1]",
            "matches empty text, so it would match every story",
            id="pattern with an empty alternative",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine"]\npatterns = ["Allies|"]'),
            "topics[1].patterns[1]",
            "matches empty text, so it would match every story",
            id="empty alternative after a word of the ordinary text (found by review)",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine"]\nexclude_patterns = ["(video)?"]'),
            "topics[1].exclude_patterns[1]",
            "matches empty text",
            id="exclusion of everything",
        ),
        pytest.param(
            ('terms = ["Ukraine"]', 'terms = ["Ukraine", "  "]'),
            "topics[1].terms[2]",
            "has no word in it",
            id="blank term",
        ),
        pytest.param(
            ("[[sources]]", '[fetch]\nuser_agent = "Lecteur – maison"\n\n[[sources]]'),
            "fetch.user_agent",
            "printable ASCII on one line",
            id="user agent no header can carry",
        ),
        pytest.param(
            ("[[sources]]", '[fetch]\nuser_agent = "a\\r\\nX-Evil: 1"\n\n[[sources]]'),
            "fetch.user_agent",
            "printable ASCII on one line",
            id="user agent with a line break",
        ),
        pytest.param(
            ('path = "page.txt"', 'url = "file://example.org/page.txt"'),
            "sources[1].url",
            "names a file on this machine",
            id="file URL of another host",
        ),
    ],
)
def test_bad_setting_names_its_key(
    tmp_path: Path, change: tuple[str, str], key: str, words: str
) -> None:
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: {key}: ")
    assert words in str(raised.value)


def test_nested_rule_errors_name_the_rule(tmp_path: Path) -> None:
    text = MINIMAL + '\n  [[topics.rules]]\n  patterns = ["[bad"]\n  fields = ["title"]\n'
    with pytest.raises(ConfigError, match=r"topics\[1\]\.rules\[1\]\.patterns\[1\]: invalid"):
        load_config(write(tmp_path, text))


def test_duplicate_topic_slug(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[topics]]\nslug = "ukraine"\nterms = ["Kyiv"]\n'
    with pytest.raises(ConfigError, match=r"topics\[2\]\.slug: topic slug 'ukraine' is already"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("serve", "base_url"),
    [
        ("", "http://127.0.0.1:8080/feeds/"),
        ("port = 9001", "http://127.0.0.1:9001/feeds/"),
        ('host = "0.0.0.0"\nport = 9001', "http://127.0.0.1:9001/feeds/"),
        ('host = "::"', "http://[::1]:8080/feeds/"),
        ('host = "news.example.org"\nport = 80', "http://news.example.org:80/feeds/"),
        ("port = 0", "http://127.0.0.1:8080/feeds/"),
    ],
)
def test_the_feeds_address_is_where_serve_listens_unless_set(
    tmp_path: Path, serve: str, base_url: str
) -> None:
    # A cron run and `aggregator serve` with one config write the same links.
    config = load_config(write(tmp_path, f"[serve]\n{serve}\n" + MINIMAL))
    assert config.feeds.base_url == base_url
    chosen = f'[feeds]\nbase_url = "https://news.example.org/feeds"\n[serve]\n{serve}\n'
    assert load_config(write(tmp_path, chosen + MINIMAL)).feeds.base_url == (
        "https://news.example.org/feeds/"
    )


def test_two_sources_of_one_url_are_refused(tmp_path: Path) -> None:
    # Found by review: both were read every run, and the validators and item digests
    # kept by URL were each other's (a 304 for one after the other's read).
    feed = 'url = "https://nato.example/feed.xml"'
    text = f'[[sources]]\nname = "a"\n{feed}\n[[sources]]\nname = "b"\n{feed}\n' + MINIMAL
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert str(raised.value) == (
        f"{tmp_path / 'config.toml'}: sources[2].url: source url "
        "'https://nato.example/feed.xml' is already used by sources[1]; keep one of them"
    )


@pytest.mark.parametrize("spelled", ["./a.xml", "sub/../a.xml"])
def test_two_sources_of_one_file_are_refused_however_spelled(tmp_path: Path, spelled: str) -> None:
    # Found by review: each took the other's stories when their order changed.
    (tmp_path / "sub").mkdir()
    text = f'[[sources]]\nname = "a"\npath = "a.xml"\n[[sources]]\nname = "b"\npath = "{spelled}"\n'
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text + MINIMAL))
    assert str(raised.value) == (
        f"{tmp_path / 'config.toml'}: sources[2].path: source file "
        f"'{tmp_path / spelled}' is already read by sources[1]; keep one of them"
    )


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 3"):
        load_config(write(tmp_path, "[feeds]\n\ntitle = \n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("table", "setting", "key"),
    [
        pytest.param("store", "lock_timeout = nan", "store.lock_timeout", id="nan timeout"),
        pytest.param("fetch", "deadline = nan", "fetch.deadline", id="nan deadline"),
        pytest.param("fetch", "deadline = inf", "fetch.deadline", id="infinite deadline"),
        pytest.param("schedule", "jitter_seconds = -inf", "schedule.jitter_seconds", id="-inf"),
        pytest.param("feeds", f"max_entries = {2**64}", "feeds.max_entries", id="2**64"),
        pytest.param(
            "fetch", f"max_entries_per_feed = {2**63 - 1}", "fetch.max_entries_per_feed", id="i64"
        ),
        pytest.param("fetch", "max_body_mb = 99999999999", "fetch.max_body_mb", id="huge cap"),
        pytest.param("store", "retention_days = 9999999", "store.retention_days", id="eons"),
        pytest.param("serve", "port = 65536", "serve.port", id="port"),
        pytest.param("fetch", "workers = 100000", "fetch.workers", id="workers"),
    ],
)
def test_numbers_out_of_range_name_their_key(
    tmp_path: Path, table: str, setting: str, key: str
) -> None:
    path = write(tmp_path, f"[{table}]\n{setting}\n" + MINIMAL)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: {key}: must be a ")
    assert " from " in str(raised.value)


def test_a_config_not_in_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(("[feeds]\n" + 'title = "café"\n' + MINIMAL).encode("latin-1"))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}:2: not UTF-8 text (TOML files are); save it as UTF-8"


def test_config_saved_with_a_utf8_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert [t.slug for t in load_config(path).topics] == ["ukraine"]


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"(\\w)\\1", id="backreference"),
        pytest.param(r"(?<!x)Kyiv", id="lookbehind"),
        pytest.param("a" * 1001, id="too long"),
    ],
)
def test_patterns_a_linear_engine_cannot_run_are_refused(tmp_path: Path, pattern: str) -> None:
    text = MINIMAL.replace('terms = ["Ukraine"]', f'terms = ["Ukraine"]\npatterns = ["{pattern}"]')
    with pytest.raises(ConfigError, match=r"topics\[1\]\.patterns\[1\]: invalid regular exp"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO would be waited on for ever, /dev/zero read without end, /dev/null taken
    for an empty config (and feeds written under /dev)."""
    if kind == "fifo":
        path = tmp_path / "config.toml"
        os.mkfifo(path)
        what = "a named pipe (FIFO)"
    elif kind == "device":
        path, what = Path("/dev/null"), "a character device"
    else:
        path, what = tmp_path, "a directory"
    with pytest.raises(ConfigError, match=f"is {re.escape(what)}, not a file; pass --config PATH"):
        load_config(path)


def test_a_right_to_left_name_an_earlier_version_wrote_still_loads(tmp_path: Path) -> None:
    """Found by review: embeddings and isolates (which right-to-left names hold, and
    earlier versions of `sources import` wrote) were refused, and the config no longer
    loaded; "Sources[2]" is no key (keys are lower case)."""
    text = (
        '[[sources]]\nname = "\\u202bחדשות\\u202c"\nurl = "https://example.org/a.xml"\n'
        '[[sources]]\nname = "\\u2067news\\u2069"\nurl = "https://example.org/b.xml"\n'
        '[[sources]]\nname = "Sources[2]"\nurl = "https://example.org/c.xml"\n'
    )
    names = [source.name for source in load_config(write(tmp_path, text)).sources]
    assert names == ["\u202bחדשות\u202c", "\u2067news\u2069", "Sources[2]"]


@pytest.mark.parametrize("name", ["sources[1]", " sources[12] "])
def test_a_source_name_that_reads_as_a_key_is_refused(tmp_path: Path, name: str) -> None:
    """Found by review: `sources disable "sources[1]"` disabled the source of that name,
    not the first one, and said nothing."""
    text = f'[[sources]]\nname = "{name}"\nurl = "https://example.org/feed.xml"\n'
    with pytest.raises(ConfigError, match="reads as a source's key") as raised:
        load_config(write(tmp_path, text))
    assert raised.value.where.endswith("sources[1].name")


@pytest.mark.parametrize(
    "name",
    [
        "two\\nlines",
        "bell\\u0007",
        "escape \\u001b[31mred",
        "n\\u0085el",
        # Found by review: an override turned the rest of every line said of the source.
        "ctl\\u202erevo",
        "ltr \\u202doverride",
    ],
)
def test_a_source_name_with_a_control_character_is_refused(tmp_path: Path, name: str) -> None:
    """A name starts every line said of its source: a line feed broke those lines in
    two, an escape sequence rewrote the terminal (found by review)."""
    text = f'[[sources]]\nname = "{name}"\nurl = "https://example.org/feed.xml"\n'
    with pytest.raises(ConfigError, match="holds a control character") as raised:
        load_config(write(tmp_path, text))
    assert raised.value.where.endswith("sources[1].name")


def test_a_long_name_is_refused_and_a_long_address_named_short(tmp_path: Path) -> None:
    """A store indexes sources by name (PostgreSQL's index takes at most 2,704 bytes:
    found by review, a source named by a long address failed every run): a name over
    500 bytes is refused; a source named by an address that long is named by its first
    200 characters and a digest of the whole, the same each time, another for another."""
    token = "x" * 600
    text = f'[[sources]]\nname = "{"é" * 251}"\nurl = "https://example.org/feed.xml"\n'
    with pytest.raises(ConfigError, match="is 502 bytes long, over the 500") as raised:
        load_config(write(tmp_path, text))
    assert raised.value.where.endswith("sources[1].name")
    text = (
        f'[[sources]]\nurl = "https://example.org/a.xml?token={token}"\n'
        f'[[sources]]\nurl = "https://example.org/a.xml?token={token}y"\n'
        '[[sources]]\nurl = "https://example.org/short.xml"\n'
    )
    first = [source.name for source in load_config(write(tmp_path, text)).sources]
    again = [source.name for source in load_config(write(tmp_path, text)).sources]
    assert first == again and len(set(first)) == 3
    assert first[0].startswith("https://example.org/a.xml?token=xxx") and first[0].endswith(")")
    assert len(first[0]) == 200 + len("… (12345678)")
    assert first[2] == "https://example.org/short.xml"


def test_a_long_address_of_wide_characters_names_its_source_within_the_limit(
    tmp_path: Path,
) -> None:
    """The shortened name counts bytes, not characters (found by review: 200 Chinese
    characters are 600 bytes)."""
    text = f'[[sources]]\nurl = "https://example.org/{"新闻" * 300}.xml"\n'
    [source] = load_config(write(tmp_path, text)).sources
    assert len(source.name.encode("utf-8")) <= MAX_NAME_BYTES
    assert source.name.startswith("https://example.org/新闻")
