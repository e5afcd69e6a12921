"""The parser sandbox: a runaway parse is stopped, and the sandbox carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.errors import SourceError
from aggregator.live.sandbox import Sandbox

RSS = (Path(__file__).parent / "data" / "feeds" / "rss20.xml").read_bytes()


def big_feed(items: int) -> bytes:
    item = b"<item><title>t</title><description>" + b"word " * 200 + b"</description></item>"
    return b'<rss version="2.0"><channel><title>x</title>' + item * items + b"</channel></rss>"


def test_a_parse_past_its_time_is_killed_and_the_worker_replaced() -> None:
    with Sandbox(workers=1, timeout=0.05) as box:
        with pytest.raises(SourceError, match=r"parsing took longer than 0.05 s; stopped"):
            box.parse(big_feed(20_000), url="https://feeds.example/huge", name="huge")
        box.timeout = 20
        assert len(box.parse(RSS, url="https://feeds.example/ok", name="ok").entries) == 3


def test_a_parse_over_its_memory_is_refused() -> None:
    with (
        Sandbox(workers=1, timeout=60, memory=200 << 20) as box,
        pytest.raises(SourceError, match=r"more than 200 MB|parser process died"),
    ):
        box.parse(big_feed(200_000), url="https://feeds.example/huge", name="huge")


def test_workers_are_reused() -> None:
    with Sandbox(workers=1, timeout=20) as box:
        box.parse(RSS, url="https://feeds.example/a", name="a")
        first = box._all[0].process.pid
        box.parse(RSS, url="https://feeds.example/b", name="b")
        assert [w.process.pid for w in box._all] == [first]


def test_workers_started_ahead_are_the_ones_that_parse() -> None:
    """warm() starts every worker in the background; parses then use those, and no more
    are started, however many threads parse at once."""
    import threading

    with Sandbox(workers=2, timeout=20) as box:
        box.warm()
        box.warm()  # a second call starts nothing more
        results: list[int] = []

        def parse(index: int) -> None:
            document = box.parse(RSS, url=f"https://feeds.example/{index}", name=str(index))
            results.append(len(document.entries))

        threads = [threading.Thread(target=parse, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [3] * 8
        assert len(box._all) == 2
        assert all(worker.process.is_alive() for worker in box._all)


def test_closing_while_workers_start_ahead_leaves_none_running() -> None:
    box = Sandbox(workers=2, timeout=20)
    box.warm()
    box.close()
    assert box._warming is not None
    box._warming.join(timeout=30)
    assert not box._warming.is_alive()
    assert box._all == []
    # Nothing started after the close is kept: the warm-up thread stopped what it made.
    box.warm()  # after close: starts nothing
    assert box._all == []


def test_a_worker_killed_by_a_timeout_is_replaced_after_a_warm_start() -> None:
    with Sandbox(workers=1, timeout=0.05) as box:
        box.warm()
        with pytest.raises(SourceError, match=r"parsing took longer"):
            box.parse(big_feed(20_000), url="https://feeds.example/huge", name="huge")
        box.timeout = 20
        assert len(box.parse(RSS, url="https://feeds.example/ok", name="ok").entries) == 3
        assert len(box._all) == 1


def test_closing_stops_the_parse_in_flight_and_the_ones_waiting() -> None:
    """close() (serve's shutdown) stops a parse in flight and wakes the parses waiting
    for a worker: each is its source's one-line error, at once, and no worker is left."""
    import os
    import signal
    import threading
    import time

    box = Sandbox(workers=1, timeout=60)
    box.warm()
    assert box._warming is not None
    box._warming.join(timeout=30)
    # The one worker is stopped by a signal: a parse sent to it stays in flight.
    os.kill(box._all[0].process.pid, signal.SIGSTOP)
    errors: list[str] = []

    def parse(name: str) -> None:
        try:
            box.parse(RSS, url=f"https://feeds.example/{name}", name=name)
        except SourceError as error:
            errors.append(error.message)

    threads = [threading.Thread(target=parse, args=(f"source {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # one parse in flight, three waiting for the worker
    assert errors == []
    started = time.monotonic()
    box.close()
    for thread in threads:
        thread.join(timeout=10)
    assert time.monotonic() - started < 5
    assert not any(thread.is_alive() for thread in threads)
    assert errors == ["not parsed: the parser workers were stopped"] * 4
    assert box._all == []
    # After the close, a parse starts nothing.
    with pytest.raises(SourceError, match="the parser workers were stopped"):
        box.parse(RSS, url="https://feeds.example/late", name="late")
    assert box._all == []
