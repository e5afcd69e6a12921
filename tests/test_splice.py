"""A feed document made from the one before (aggregator.splice) is byte for byte the
document a full render gives: for the pinned cases of tests/data/render (whose RSS and
Atom bytes are the expected results) and for randomised feeds, whatever was kept."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import datetime

import pytest

from aggregator import splice
from aggregator.model import Entry
from aggregator.render import FeedSpec, render_atom, render_feed_files, render_json, render_rss
from tests.test_render_direct import DATA, all_pinned_inputs, random_entry, random_feed

FORMATS = (
    ("rss", render_rss, splice.RSS),
    ("atom", render_atom, splice.ATOM),
    ("json", render_json, splice.JSON),
)
Feed = tuple[FeedSpec, list[Entry], datetime]


def _feeds() -> dict[str, Feed]:
    feeds = dict(all_pinned_inputs())
    for seed in range(60):
        feeds[f"seed-{seed}"] = random_feed(seed)
    return feeds


FEEDS = _feeds()


def _befores(entries: Sequence[Entry], seed: int) -> list[tuple[str, list[Entry], set[str]]]:
    """Earlier versions of a feed, each with the ids whose items may be kept (their
    stories' digests did not change), as a publish would know them."""
    rng = random.Random(seed)
    older = random_entry(rng, 999)
    same = {e.id for e in entries}
    edited = list(entries)
    if edited:
        place = rng.randrange(len(edited))
        edited[place] = dataclasses.replace(edited[place], title=edited[place].title + " (old)")
    shuffled = list(entries)
    rng.shuffle(shuffled)
    return [
        # One new story at the top since, the oldest gone: the steady case.
        ("one new", [*entries[1:], older], {e.id for e in entries[1:]}),
        # A story told differently before: its item is rendered again.
        ("one edited", edited, same - {edited[place].id} if edited else set()),
        ("the same", list(entries), same),
        ("another order", shuffled, same),
        ("some kept", list(entries), {i for i in same if rng.random() < 0.5}),
    ]


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_a_feed_made_from_the_one_before_is_a_full_render(name: str) -> None:
    spec, entries, fallback = FEEDS[name]
    whole = render_feed_files(spec, entries, fallback)
    if name in all_pinned_inputs():  # the expected bytes, pinned
        assert whole[f"{spec.slug}.rss"] == (DATA / f"{name}.rss").read_bytes()
        assert whole[f"{spec.slug}.atom"] == (DATA / f"{name}.atom").read_bytes()
    for label, earlier, keep in _befores(entries, hash(name) % 1000):
        before = render_feed_files(spec, earlier, fallback)
        made = render_feed_files(spec, entries, fallback, before=before, keep=keep)
        assert made == whole, label


@pytest.mark.parametrize("name", sorted(n for n, feed in FEEDS.items() if len(feed[1]) > 1))
def test_the_items_kept_are_taken_from_the_document_before(name: str) -> None:
    """Not a whole render in disguise: with something to keep, every format is made
    from the old document (so the test above checks the splice itself)."""
    spec, entries, fallback = FEEDS[name]
    earlier = [*entries[1:]]
    keep = {e.id for e in earlier}
    for _, render, layout in FORMATS:
        old = render(spec, earlier, fallback)
        made = splice.remade(render, layout, spec, entries, fallback, old, keep)
        assert made == render(spec, entries, fallback)


def _steady() -> tuple[FeedSpec, list[Entry], datetime, list[Entry]]:
    spec, entries, fallback = random_feed(7)
    rng = random.Random(7)
    entries = [random_entry(rng, n) for n in range(6)]
    return spec, entries, fallback, entries[1:]


@pytest.mark.parametrize(("extension", "render", "layout"), FORMATS)
def test_an_old_document_that_is_not_as_written_is_not_used(
    extension: str, render: splice.Render, layout: splice.Layout
) -> None:
    """Cut short, an item twice, other bytes altogether: nothing is kept (None), and
    the feed is rendered whole. An item whose id cannot be read is rendered again."""
    spec, entries, fallback, earlier = _steady()
    keep = {e.id for e in earlier}
    old = render(spec, earlier, fallback)
    first = old.index(layout.opening, old.index(b'"items"') if layout.separated else 0)
    end = old.index(layout.closing, first) + len(layout.closing)
    item = old[first:end]
    spoilt = {
        "cut short": old[: len(old) // 2],
        "an item twice": old[:first] + item + (b",\n" if layout.separated else b"") + old[first:],
        "not a feed": b"<html><body>Not found</body></html>\n",
        "empty": b"",
    }
    for label, data in spoilt.items():
        assert splice.remade(render, layout, spec, entries, fallback, data, keep) is None, label
        name = f"{spec.slug}.{extension}"
        made = render_feed_files(spec, entries, fallback, before={name: data}, keep=keep)
        assert made[name] == render(spec, entries, fallback), label
    no_id = old.replace(layout.id_before, b" " + layout.id_before.lstrip(), 1)
    parts = splice.pieces(no_id, layout)
    assert parts is not None and len(parts[1]) == len(earlier) - 1
    made_again = splice.remade(render, layout, spec, entries, fallback, no_id, keep)
    assert made_again == render(spec, entries, fallback)


def test_ids_that_need_escaping_are_rendered_again() -> None:
    """An id that XML escapes (``&``, ``<``) is not read back from the old bytes: its
    item is rendered anew, and the others are still kept. (JSON writes it as it is.)"""
    spec, entries, fallback, _ = _steady()
    odd = dataclasses.replace(entries[3], id="tag:agg.example,2026:entry:a&b<c>")
    entries[3] = odd
    earlier = entries[1:]
    keep = {e.id for e in earlier}
    for _, render, layout in FORMATS:
        old = render(spec, earlier, fallback)
        parts = splice.pieces(old, layout)
        assert parts is not None
        if layout.separated:
            assert odd.id in parts[1] and len(parts[1]) == len(earlier)
        else:
            assert odd.id not in parts[1] and len(parts[1]) == len(earlier) - 1
        made = splice.remade(render, layout, spec, entries, fallback, old, keep)
        assert made == render(spec, entries, fallback)


def test_an_empty_feed_and_a_feed_emptied() -> None:
    spec, entries, fallback, _ = _steady()
    for _, render, layout in FORMATS:
        empty = render(spec, [], fallback)
        parts = splice.pieces(empty, layout)
        assert parts is not None and parts[1:] == ({}, layout.tail, [])
        # Nothing to keep in either direction: the caller renders it whole.
        assert splice.remade(render, layout, spec, entries, fallback, empty, set()) is None
        full = render(spec, entries, fallback)
        assert splice.remade(render, layout, spec, [], fallback, full, set()) is None


def test_an_id_twice_among_the_entries_keeps_nothing() -> None:
    """Two entries of one id (a store never gives them): which item is whose cannot be
    told, so nothing is kept, and the feed is rendered whole (found by review)."""
    spec, entries, fallback, _ = _steady()
    twice = [*entries, dataclasses.replace(entries[2], title="Another telling")]
    keep = {e.id for e in entries}
    for _, render, layout in FORMATS:
        old = render(spec, entries, fallback)
        assert splice.remade(render, layout, spec, twice, fallback, old, keep) is None
