"""Fetching against a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.live.fetch import Fetched, Fetcher, FetchError, Limits, Validators, freshness
from tests.feedserver import FEEDS, Server

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FAST = Limits(connect_timeout=2, read_timeout=1, deadline=2, max_body=1 << 20, max_decoded=2 << 20)


def fetch(url: str, validators: Validators | None = None, limits: Limits = FAST) -> Fetched:
    async def go() -> Fetched:
        async with Fetcher(limits) as fetcher:
            return await fetcher.fetch(
                url, name="test", validators=validators or Validators(), now=NOW
            )

    return asyncio.run(go())


def failure(url: str, limits: Limits = FAST) -> FetchError:
    with pytest.raises(FetchError) as raised:
        fetch(url, limits=limits)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(f"test ({url}): ")
    return raised.value


def test_plain_fetch_with_validators(feedserver: Server) -> None:
    got = fetch(f"{feedserver.base}/feeds/rss20.xml")
    assert got.status == 200
    assert got.body == (FEEDS / "rss20.xml").read_bytes()
    assert got.validators.etag and got.validators.last_modified
    assert got.moved_to is None


def test_conditional_get_answers_304_without_body(feedserver: Server) -> None:
    first = fetch(f"{feedserver.base}/feeds/atom10.xml")
    second = fetch(f"{feedserver.base}/feeds/atom10.xml", first.validators)
    assert second.not_modified
    assert second.body == b""
    assert feedserver.log[-1] == ("GET", "/feeds/atom10.xml", first.validators.etag)


def test_conditional_get_by_last_modified_alone(feedserver: Server) -> None:
    first = fetch(f"{feedserver.base}/lastmod/rss10.rdf")
    assert first.validators.etag is None and first.validators.last_modified
    assert fetch(f"{feedserver.base}/lastmod/rss10.rdf", first.validators).not_modified


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(feedserver: Server, encoding: str) -> None:
    got = fetch(f"{feedserver.base}/{encoding}/rss20.xml")
    assert got.body == (FEEDS / "rss20.xml").read_bytes()


def test_redirect_chain_is_followed_and_a_permanent_move_remembered(feedserver: Server) -> None:
    got = fetch(f"{feedserver.base}/redirect/5/rss20.xml")
    assert got.body == (FEEDS / "rss20.xml").read_bytes()
    assert got.moved_to == f"{feedserver.base}/feeds/rss20.xml"


def test_temporary_redirect_is_not_a_move(feedserver: Server) -> None:
    assert fetch(f"{feedserver.base}/temporary/rss20.xml").moved_to is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("/redirect/6/rss20.xml", "more than 5 redirects", id="too many redirects"),
        pytest.param("/loop/a", "redirect loop (back to http://", id="redirect loop"),
        pytest.param("/to-file", "redirect to a file: URL refused", id="redirect to file"),
        pytest.param("/status/404", "HTTP 404 Not Found", id="404"),
        pytest.param("/status/500", "HTTP 500 Internal Server Error", id="500"),
        pytest.param("/big", "body of 3 MB is over the 1 MB limit", id="oversized body"),
        pytest.param("/big-undeclared", "body over the 1 MB limit", id="oversized, undeclared"),
        pytest.param("/bomb", "body decompresses to over 2 MB", id="gzip bomb"),
    ],
)
def test_failures_are_one_line(feedserver: Server, path: str, message: str) -> None:
    assert message in failure(f"{feedserver.base}{path}").message


def test_gone(feedserver: Server) -> None:
    error = failure(f"{feedserver.base}/status/410")
    assert error.gone
    assert error.message == "HTTP 410 Gone: the feed was removed"


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after(feedserver: Server, code: int) -> None:
    error = failure(f"{feedserver.base}/status/{code}")
    assert error.retry_after == NOW + timedelta(seconds=120)
    assert f"retry after {(NOW + timedelta(seconds=120)).isoformat()}" in error.message


def test_slow_drip_stops_at_the_deadline(feedserver: Server) -> None:
    started = time.monotonic()
    error = failure(f"{feedserver.base}/slow")
    assert error.message == "timeout after 2 s"
    assert time.monotonic() - started < 4


def test_stalled_body_times_out(feedserver: Server) -> None:
    limits = Limits(connect_timeout=1, read_timeout=0.5, deadline=3)
    assert failure(f"{feedserver.base}/stall", limits).message.startswith("timeout")


def test_refused_connection(feedserver: Server) -> None:
    assert "cannot fetch" in failure("http://127.0.0.1:9/feed.xml").message


def test_user_agent_names_the_project(feedserver: Server) -> None:
    from aggregator import __version__

    seen: list[str] = []

    async def go() -> None:
        async with Fetcher(FAST) as fetcher:
            seen.append(fetcher.user_agent)
            await fetcher.fetch(
                f"{feedserver.base}/feeds/rss20.xml", name="t", validators=Validators(), now=NOW
            )

    asyncio.run(go())
    assert seen == [f"aggregator/{__version__} (feed republisher)"]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"cache-control": "public, max-age=600"}, 600, id="max-age"),
        pytest.param(
            {"cache-control": "max-age=60", "expires": "Mon, 23 Nov 2026 14:00:00 GMT"},
            60,
            id="max-age wins over Expires (RFC 9111 4.2.1)",
        ),
        pytest.param(
            {"expires": "Mon, 23 Nov 2026 12:30:00 GMT", "date": "Mon, 23 Nov 2026 12:10:00 GMT"},
            1200,
            id="Expires minus Date",
        ),
        pytest.param({"expires": "Mon, 23 Nov 2026 12:05:00 GMT"}, 300, id="Expires minus now"),
        pytest.param({"expires": "0"}, None, id="invalid Expires: stale"),
        pytest.param({"expires": "Mon, 23 Nov 2026 11:00:00 GMT"}, None, id="Expires past"),
        pytest.param({"cache-control": "no-cache, max-age=600"}, None, id="no-cache"),
        pytest.param({"cache-control": "max-age=99999999"}, 7 * 86400, id="capped at a week"),
        pytest.param({}, None, id="nothing said"),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], seconds: int | None) -> None:
    assert freshness(headers, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate, read by our pattern
        " Tue, 14 Nov 2023 22:13:20 GMT ",
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850 and asctime: by the email parser
        "Sun Nov  6 08:49:37 1994",
        "Tue, 14 Nov 2023 22:13:20 +0000",
        "Mon, 31 Feb 2024 10:00:00 GMT",
        "Tue, 14 Nov 2023 25:13:20 GMT",
        "Tue, 14 Nov 2023 23:59:60 GMT",
        "Tue, 14 Nov 0054 22:13:20 GMT",
        "Tue, 14 Nov 2023 22:13:20",
        "garbage",
        "",
    ],
)
def test_http_dates_read_as_the_email_parser_reads_them(value: str) -> None:
    from email.utils import parsedate_to_datetime

    from aggregator.live.fetch import _http_date

    try:
        moment: datetime | None = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        moment = None
    expected = moment if moment is not None and moment.tzinfo is not None else None
    assert _http_date(value) == expected


def test_every_imf_fixdate_reads_as_the_email_parser_reads_it() -> None:
    from email.utils import parsedate_to_datetime

    from aggregator.live.fetch import _http_date

    rng = random.Random(9110)
    for _ in range(2000):
        moment = datetime.fromtimestamp(rng.randrange(-2_000_000_000, 8_000_000_000), UTC)
        value = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
        assert _http_date(value) == parsedate_to_datetime(value) == moment


def test_freshness_reads_response_headers_in_any_case() -> None:
    from aggregator.live.http import Headers

    headers = Headers(
        [("Expires", "Mon, 23 Nov 2026 12:30:00 GMT"), ("DATE", "Mon, 23 Nov 2026 12:10:00 GMT")]
    )
    assert freshness(headers, NOW) == 1200
    assert freshness(Headers([("Cache-Control", "Max-Age=600")]), NOW) == 600


def test_a_fetcher_imports_and_opens_nothing_until_it_fetches() -> None:
    """In a new interpreter: the fetch module and a Fetcher bring in no HTTP library."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from aggregator.live.fetch import Fetcher\n"
        "Fetcher()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    modules = set(done.stdout.split())
    assert "aggregator.live.fetch" in modules
    assert not modules & {"aggregator.live.http", "httptools", "httpx", "httpcore", "anyio", "trio"}
