"""One of our RSS or Atom feeds as the page ``feed.xsl`` makes of it, for a browser.

``aggregator serve`` sends browsers this page instead of the feed: Chromium shows a feed
as plain text, and warns over every page that a site transforms with XSLT in the
browser (which it is removing). The stylesheet is the one the feeds name (shipped with
the package), run by lxml with every file and network access denied, on a feed we
wrote, parsed without resolving entities. Run here, it has the extension function
``agg:day``, which gives each story's day in the news's time zone (``[feeds]
timezone``), as the site's pages do; a browser running the stylesheet itself shows the
day in the offset the feed writes (found by review: a story dated 20:00 -04:00 showed
a day before its page's "02:00 CEST").
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

from aggregator.site import outputs, static_file

_threads = threading.local()  # an XSLT object per thread, and the zone of its pages
EXTENSIONS = "urn:x-aggregator:xslt"  # feed.xsl's agg: prefix
NOON = time(12, 0)


def day_in(text: str, zone: tzinfo) -> str:
    """A feed's date (RFC 822 or RFC 3339) as the day it is in ``zone``: "17 October
    2023". 12:00 UTC is a story dated by its day alone (aggregator.render): that day,
    in any zone. Text that is no date is given back as it is."""
    from aggregator.site.pages import MONTHS

    try:
        moment = (
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            if text[:4].isdigit()
            else parsedate_to_datetime(text)
        )
    except (ValueError, TypeError, IndexError):
        return text
    if moment.tzinfo is None:
        return text
    if not (moment.utcoffset() or moment.timetz().replace(tzinfo=None) != NOON):
        day = moment.date()  # a day alone, written at noon UTC
    else:
        day = moment.astimezone(zone).date()
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _transform(zone: tzinfo) -> Any:
    transform = getattr(_threads, "transform", None)
    if transform is None or getattr(_threads, "zone", None) is not zone:
        from lxml import etree

        denied = etree.XSLTAccessControl(  # type: ignore[call-arg]  # (stubs lack them)
            read_file=False,
            write_file=False,
            create_dir=False,
            read_network=False,
            write_network=False,
        )

        def day(_: object, text: object) -> str:
            return day_in(str(text), zone)

        transform = etree.XSLT(
            etree.XML(static_file(outputs.FEED_XSLT)),
            access_control=denied,
            extensions={(EXTENSIONS, "day"): day},
        )
        _threads.transform, _threads.zone = transform, zone
    return transform


def feed_page(feed: bytes, zone: tzinfo = UTC) -> bytes:
    """The page of ``feed`` (the bytes of one of our RSS or Atom files), its stories'
    days in ``zone``."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return bytes(_transform(zone)(etree.fromstring(feed, parser)))
