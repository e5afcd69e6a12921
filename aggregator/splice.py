"""A feed document made again from the one before: unchanged items keep their bytes.

A steady run changes one or two stories of a feed of fifty, yet each of the feed's
three documents would be built and serialised whole again. Instead, the items of the
stories whose digests did not change (:mod:`aggregator.site.plan`) are cut out of the
document as it was last written, only the other items are rendered, with the feed's
head (its date follows its newest story) rendered anew, and the pieces are joined in
the feed's order. The result is byte for byte what a full render gives:

* an item's bytes depend on its story and the feed's settings alone, never on where
  it stands among the others (every item is at the same depth, two-space indented,
  each on lines of its own: lxml's and the json module's own layout);
* the old document is used only when its bytes are the ones this code wrote (the
  caller checks them against the digest recorded when they were written, and the
  renderer's fingerprint is the same, or nothing is kept at all);
* an item is found by its first and last lines, which text cannot imitate (``<`` is
  always escaped in XML text and attributes; a JSON string holds no raw line break),
  and known by its id, taken only when the id needs no escaping (else its story's
  item is rendered again);
* anything unexpected (a layout not found, an id twice) gives None, and the caller
  renders the whole document as ever.

Pure: bytes in, bytes out. ``tests/test_splice.py`` checks every case against a full
render.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.records import record

if TYPE_CHECKING:
    from aggregator.model import Entry
    from aggregator.render import FeedSpec

# A renderer that renders the items of only some entries, the head from all of them.
Render = Callable[..., bytes]


@record
class Layout:
    """Where a format's items are: each from its ``opening`` line to its ``closing``
    line, its id on a line ``id_before`` + id + ``id_after``; then the document's
    ``tail``. (JSON Feed's items are joined by commas: ``separated``.)"""

    opening: bytes
    closing: bytes
    id_before: bytes
    id_after: bytes
    tail: bytes
    separated: bool = False


RSS = Layout(
    b"    <item>\n",
    b"    </item>\n",
    b'      <guid isPermaLink="false">',
    b"</guid>\n",
    b"  </channel>\n</rss>\n",
)
ATOM = Layout(b"  <entry>\n", b"  </entry>\n", b"    <id>", b"</id>\n", b"</feed>\n")
JSON = Layout(b"    {\n", b"    }", b'      "id": ', b",\n", b"\n  ]\n}\n", separated=True)
# An empty JSON Feed's items, and what stands before its first item otherwise.
_JSON_NONE = b'  "items": []\n}\n'
_JSON_FIRST = b'  "items": [\n'


def remade(
    render: Render,
    layout: Layout,
    spec: FeedSpec,
    entries: Sequence[Entry],
    fallback: datetime,
    old: bytes,
    keep: Collection[str],
) -> bytes | None:
    """The document ``render`` gives for ``entries``, made from ``old`` (the same
    feed's document as last written) with the items of the entries in ``keep`` taken
    from it as they are; None when ``old`` cannot be used (render it all then)."""
    if len({e.id for e in entries}) != len(entries):
        return None  # which item is whose could not be told
    before = pieces(old, layout)
    if before is None:
        return None
    kept = before[1]
    fresh = {e.id for e in entries if not (e.id in keep and e.id in kept)}
    if len(fresh) == len(entries):
        return None  # nothing to keep: a whole render is as quick
    made = pieces(render(spec, entries, fallback, only=fresh), layout)
    if made is None:
        return None
    head, _, tail, rendered = made
    if len(rendered) != len(fresh):
        return None
    # The items rendered now are those of the fresh entries, in the feed's order.
    new = iter(rendered)
    items = [next(new) if e.id in fresh else kept[e.id] for e in entries]
    return join(head, items, tail, layout)


def join(head: bytes, items: list[bytes], tail: bytes, layout: Layout) -> bytes:
    if not layout.separated:
        return head + b"".join(items) + tail
    if not items:
        return head + _JSON_NONE
    return head + _JSON_FIRST + b",\n".join(items) + tail


Pieces = tuple[bytes, dict[str, bytes], bytes, list[bytes]]


def pieces(document: bytes, layout: Layout) -> Pieces | None:
    """``document`` cut into its head, its items by id (those whose id can be read),
    its tail, and all its items in order; None when it is not laid out as ``layout``
    says, or an id repeats."""
    if layout.separated:
        return _json_pieces(document, layout)
    start = document.find(b"\n" + layout.opening)
    if start < 0:  # no items: the head runs to the tail
        if not document.endswith(layout.tail):
            return None
        return document[: -len(layout.tail)], {}, layout.tail, []
    start += 1
    head = document[:start]
    items: dict[str, bytes] = {}
    order: list[bytes] = []
    while document.startswith(layout.opening, start):
        end = document.find(b"\n" + layout.closing, start)
        if end < 0:
            return None
        end += 1 + len(layout.closing)
        order.append(document[start:end])
        if not _take(items, order[-1], layout):
            return None
        start = end
    if document[start:] != layout.tail:
        return None
    return head, items, layout.tail, order


def _json_pieces(document: bytes, layout: Layout) -> Pieces | None:
    if document.endswith(b"\n" + _JSON_NONE):
        return document[: -len(_JSON_NONE)], {}, layout.tail, []
    start = document.find(b"\n" + _JSON_FIRST)
    if start < 0 or not document.endswith(layout.tail):
        return None
    head = document[: start + 1]
    body = document[start + 1 + len(_JSON_FIRST) : -len(layout.tail)]
    # Items are "    {" … "    }" joined by ",\n"; what they hold is indented deeper.
    items: dict[str, bytes] = {}
    order: list[bytes] = []
    for item in body.split(b"\n" + layout.closing + b",\n"):
        whole = item if item.endswith(b"\n" + layout.closing) else item + b"\n" + layout.closing
        order.append(whole)
        if not whole.startswith(layout.opening) or not _take(items, whole, layout):
            return None
    return head, items, layout.tail, order


def _take(items: dict[str, bytes], item: bytes, layout: Layout) -> bool:
    """Put ``item`` in ``items`` by its id, or leave it out when its id cannot be read
    as it is written (its story's item is then rendered again); False when the id is
    there already (which item is whose cannot be told)."""
    found = item.find(b"\n" + layout.id_before)
    if found < 0:
        return True
    found += 1 + len(layout.id_before)
    end = item.find(layout.id_after, found)
    if end < 0:
        return True
    raw = item[found:end]
    if layout.separated:
        try:
            value = json.loads(raw)
        except ValueError:
            return True
        if not isinstance(value, str) or json.dumps(value, ensure_ascii=False).encode() != raw:
            return True
        entry_id = value
    else:
        if b"&" in raw or b"<" in raw or b"\n" in raw:
            return True  # escaped: not worth reading back
        entry_id = raw.decode("utf-8", "replace")
    if entry_id in items:
        return False
    items[entry_id] = item
    return True
