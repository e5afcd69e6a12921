"""One of our RSS or Atom feeds as the page ``feed.xsl`` makes of it, for a browser.

``aggregator serve`` sends browsers this page instead of the feed: Chromium shows a feed
as plain text, and warns over every page that a site transforms with XSLT in the
browser (which it is removing). The stylesheet is the one the feeds name (shipped with
the package), run by lxml with every file and network access denied, on a feed we
wrote, parsed without resolving entities.
"""

from __future__ import annotations

import threading
from typing import Any

from aggregator.site import outputs, static_file

_threads = threading.local()  # an XSLT object per thread


def _transform() -> Any:
    transform = getattr(_threads, "transform", None)
    if transform is None:
        from lxml import etree

        denied = etree.XSLTAccessControl(  # type: ignore[call-arg]  # (stubs lack them)
            read_file=False,
            write_file=False,
            create_dir=False,
            read_network=False,
            write_network=False,
        )
        transform = etree.XSLT(etree.XML(static_file(outputs.FEED_XSLT)), access_control=denied)
        _threads.transform = transform
    return transform


def feed_page(feed: bytes) -> bytes:
    """The page of ``feed`` (the bytes of one of our RSS or Atom files)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return bytes(_transform()(etree.fromstring(feed, parser)))
