"""Text exactly once: what goes into a feed comes back out, in every format, with two readers.

Stories whose titles and summaries hold ``' " & < >``, curly quotes, accents, text
that looks like markup or like a character reference, and sanitised HTML content
are rendered as RSS 2.0, Atom 1.0 and JSON Feed 1.1, then read back

* with feedparser (a reader's view; RSS and Atom, as it does not read JSON Feed),
  unescaping HTML once where it says the text is HTML, and
* with lxml (one XML unescape), honouring Atom's ``type`` attribute and treating
  an RSS ``description`` as HTML (RSS 2.0: "entity-encoded HTML is allowed"), and
  JSON Feed with ``json``,

and each must give back exactly the original text, the link each item leads to
and the HTML content.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import feedparser
import lxml.html
import pytest
from lxml import etree

from aggregator.live.clean import sanitize_html
from aggregator.model import Entry, Provenance, Published
from aggregator.render import FeedSpec, render_atom, render_json, render_rss

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SPEC = FeedSpec(
    slug="all",
    title="News & “views”: <all>",
    description="Everything, 'quoted' & <escaped>",
    base_url="https://aggregator.example/feeds/",
    site_url="https://www.nato.int/",
    author="aggregator",
    id_authority="aggregator.example,2026",
)
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"


def _entry(
    digest: str,
    title: str,
    summary: str,
    *,
    link: str | None = None,
    content_html: str | None = None,
) -> Entry:
    return Entry(
        id=f"tag:aggregator.example,2026:entry:{digest}",
        title=title,
        published=Published.on_day(date(2024, 2, 16)),
        summary=summary,
        sources=(Provenance("saved page", "seeds/000.txt", 3),),
        first_seen=NOW,
        last_seen=NOW,
        link=link,
        content_html=content_html,
    )


STORIES = (
    _entry(
        "plain",
        'NATO\'s "Steadfast Noon" & <deterrence> > 3 — ‘curly’ “quotes”, café Zürich, Ærø',
        'Allies\' views & "plans": 5 < 7 > 2 — naïve “quote”, déjà vu in Brussels.',
    ),
    _entry(
        "markup-lookalike",
        # No close tag and no character reference in a title: RSS leaves a title's type
        # unsaid, and feedparser (like many readers) takes a title with one for HTML.
        "Text that looks like markup: <b> & <p class='x'> stay text",
        "A summary that is text, though it reads <p>like HTML</p> &lt;tag&gt; &#39; &nbsp; "
        "&amp; &#x27; &quot;",
        link="https://www.nato.int/cps/en/natohq/news_1.htm?a=1&b=2",
    ),
    _entry(
        "html",
        "Secretary General’s “bold” visit & talks",
        "Stoltenberg visited Kyiv & met Zelenskyy: “a city with a special place”.",
        link="https://www.nato.int/cps/en/natohq/news_218172.htm",
        content_html=sanitize_html(
            '<p>NATO&#x27;s <b>“bold”</b> &amp; &lt;plans&gt; in <a href="/x?a=1&amp;b=2">'
            "Kyiv</a></p><p>café — ‘more’</p>",
            "https://www.nato.int/",
        ),
    ),
    _entry("empty", "A story told only by its title: R&D <ok>", ""),
)


@dataclass(frozen=True)
class ReadBack:
    """One item as a reader sees it."""

    title: str
    summary: str  # "" when the item has none
    content_html: str | None
    link: str


def expected(entry: Entry) -> ReadBack:
    link = entry.link or f"{SPEC.base_url}entries/{entry.id.rsplit(':', 1)[-1]}.html"
    return ReadBack(entry.title, entry.summary, entry.content_html, link)


def html_text(fragment: str) -> str:
    """The text an HTML fragment shows, read by a real HTML parser."""
    if not fragment:
        return ""
    return str(lxml.html.fragment_fromstring(fragment, create_parent="div").text_content())


def _parse(document: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(document, parser)


# -- feedparser ---------------------------------------------------------------------------


def _feedparser_text(detail: dict[str, str] | None) -> str:
    if not detail:
        return ""
    value = detail["value"]
    return html.unescape(value) if detail["type"] == "text/html" else value


def read_with_feedparser(document: bytes) -> list[ReadBack]:
    parsed = feedparser.parse(document)
    assert not parsed.bozo, parsed.get("bozo_exception")
    found = []
    for item in parsed.entries:
        html_parts = [c["value"] for c in item.get("content", []) if c["type"] == "text/html"]
        found.append(
            ReadBack(
                title=_feedparser_text(item.title_detail),
                summary=_feedparser_text(item.get("summary_detail")),
                content_html=html_parts[0] if html_parts else None,
                link=item.link,
            )
        )
    return found


# -- lxml, one unescape -----------------------------------------------------------------


def _atom_text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    kind = element.get("type", "text")
    assert kind in ("text", "html"), kind
    text = element.text or ""
    return html_text(text) if kind == "html" else text


def read_atom_with_lxml(document: bytes) -> list[ReadBack]:
    found = []
    for entry in _parse(document).iter(f"{ATOM}entry"):
        content = entry.find(f"{ATOM}content")
        if content is not None:
            assert content.get("type") == "html"
        [link] = [
            e.get("href")
            for e in entry.findall(f"{ATOM}link")
            if e.get("rel", "alternate") == "alternate"
        ]
        found.append(
            ReadBack(
                title=_atom_text(entry.find(f"{ATOM}title")),
                summary=_atom_text(entry.find(f"{ATOM}summary")),
                content_html=None if content is None else content.text,
                link=link,
            )
        )
    return found


def read_rss_with_lxml(document: bytes) -> list[ReadBack]:
    found = []
    for item in _parse(document).iter("item"):
        found.append(
            ReadBack(
                title=item.findtext("title") or "",
                # RSS 2.0: the description is HTML (entity-encoded); its text is what shows.
                summary=html_text(item.findtext("description") or ""),
                content_html=item.findtext(CONTENT),
                link=item.findtext("link") or "",
            )
        )
    return found


def read_json(document: bytes) -> list[ReadBack]:
    found = []
    for item in json.loads(document)["items"]:
        assert ("content_html" in item) or ("content_text" in item)
        found.append(
            ReadBack(
                title=item["title"],
                summary=item.get("summary", ""),
                content_html=item.get("content_html"),
                link=item["url"],
            )
        )
    return found


READERS = [
    pytest.param(render_rss, read_with_feedparser, id="rss feedparser"),
    pytest.param(render_rss, read_rss_with_lxml, id="rss lxml"),
    pytest.param(render_atom, read_with_feedparser, id="atom feedparser"),
    pytest.param(render_atom, read_atom_with_lxml, id="atom lxml"),
    pytest.param(render_json, read_json, id="json"),
]


@pytest.mark.parametrize(("render", "read"), READERS)
def test_text_comes_back_exactly_as_it_went_in(render, read) -> None:  # type: ignore[no-untyped-def]
    document = render(SPEC, STORIES, NOW)
    assert read(document) == [expected(e) for e in STORIES]


def test_atom_declares_the_type_of_every_text() -> None:
    root = _parse(render_atom(SPEC, STORIES, NOW))
    types = {
        (entry.findtext(f"{ATOM}id"), child.tag.removeprefix(ATOM)): child.get("type")
        for entry in root.iter(f"{ATOM}entry")
        for child in entry
        if child.tag in (f"{ATOM}title", f"{ATOM}summary", f"{ATOM}content")
    }
    prefix = "tag:aggregator.example,2026:entry:"
    assert types == {
        (f"{prefix}plain", "title"): "text",
        (f"{prefix}plain", "summary"): "text",
        (f"{prefix}markup-lookalike", "title"): "text",
        # Text holding an end tag or references is declared html, escaped once more, so
        # that no reader takes it for markup (render.atom_text); it reads back the same.
        (f"{prefix}markup-lookalike", "summary"): "html",
        (f"{prefix}html", "title"): "text",
        (f"{prefix}html", "summary"): "text",
        (f"{prefix}html", "content"): "html",
        (f"{prefix}empty", "title"): "text",
    }


def test_json_feed_says_which_text_is_html() -> None:
    items = {
        i["id"].rsplit(":", 1)[-1]: i for i in json.loads(render_json(SPEC, STORIES, NOW))["items"]
    }
    assert "content_text" not in items["html"]
    assert items["html"]["content_html"] == STORIES[2].content_html
    assert items["plain"]["content_text"] == STORIES[0].summary
    assert items["empty"]["content_text"] == STORIES[3].title
    assert "summary" not in items["empty"]


def test_rss_quotes_are_never_character_references() -> None:
    document = render_rss(SPEC, STORIES[:1], NOW).decode()
    for reference in ("&#x27;", "&#39;", "&quot;", "&amp;#", "&amp;quot;"):
        assert reference not in document


def test_regenerating_gives_the_same_bytes() -> None:
    for render in (render_rss, render_atom, render_json):
        assert render(SPEC, STORIES, NOW) == render(SPEC, STORIES, NOW)
