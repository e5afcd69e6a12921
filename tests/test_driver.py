"""The sandbox's workers driven from an event loop (aggregator.live.driver): the same
documents and the same errors as the sandbox's own way, and the workers back in the
sandbox, or stopped, when the driver lets go."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from aggregator.errors import SourceError
from aggregator.live.driver import Driver
from aggregator.live.sandbox import Sandbox
from tests.test_sandbox import RSS, big_feed

FEEDS = Path(__file__).parent / "data" / "feeds"


def warm(box: Sandbox) -> None:
    """The sandbox's workers started, and ready."""
    box.warm()
    if box._warming is not None:
        box._warming.join(timeout=60)


def stop_workers(box: Sandbox) -> None:
    """Every worker of the sandbox stopped by a signal: what is sent to it waits."""
    for worker in box._all:
        assert worker.process.pid is not None
        os.kill(worker.process.pid, signal.SIGSTOP)


def run_child(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a new interpreter, the path of a small RSS document in ``$RSS``."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RSS": str(FEEDS / "rss20.xml")},
    )


def documents() -> list[tuple[str, bytes]]:
    return sorted((path.name, path.read_bytes()) for path in FEEDS.glob("*") if path.is_file())


def parse_all(box: Sandbox, items: list[tuple[str, bytes]]) -> list[object]:
    """Each document parsed through a driver, all at once: its document or its error."""

    async def main() -> list[object]:
        async with Driver.attached(box) as driver:
            assert driver is not None

            async def one(name: str, data: bytes) -> object:
                try:
                    return await driver.parse(data, url=f"https://feeds.example/{name}", name=name)
                except SourceError as error:
                    return error.message

            return list(await asyncio.gather(*(one(name, data) for name, data in items)))

    return asyncio.run(main())


def test_every_test_feed_reads_as_through_the_sandbox() -> None:
    items = documents()
    assert len(items) > 20
    with Sandbox(workers=2, timeout=60) as box:
        expected: list[object] = []
        for name, data in items:
            try:
                expected.append(box.parse(data, url=f"https://feeds.example/{name}", name=name))
            except SourceError as error:
                expected.append(error.message)
        assert parse_all(box, items) == expected
        # The workers are the sandbox's again, and read through threads as before.
        assert len(box._all) == 2
        assert len(box.parse(RSS, url="https://feeds.example/a", name="a").entries) == 3


def test_a_document_larger_than_a_pipe_goes_whole_while_the_worker_is_busy() -> None:
    large = big_feed(4_000)  # about 4 MB: many pipe buffers
    assert len(large) > 4 << 20
    with Sandbox(workers=1, timeout=60) as box:
        warm(box)
        got = parse_all(box, [("a", large), ("b", RSS), ("c", large), ("d", RSS)])
    assert [len(document.entries) for document in got] == [1000, 3, 1000, 3]  # type: ignore[attr-defined]


def test_a_parse_past_its_time_is_stopped_and_the_next_ones_read() -> None:
    """The time counts from when the worker starts on a task: the task queued behind
    the slow one is not blamed, and goes to another worker. (The worker is stopped by a
    signal, a parse that never ends: a large document once stood in for it, and a quick
    machine read it within the time.)"""
    with Sandbox(workers=1, timeout=0.5) as box:
        warm(box)
        stop_workers(box)
        got = parse_all(box, [("stuck", RSS), ("ok", RSS), ("ok2", RSS)])
        assert got[0] == "parsing took longer than 0.5 s; stopped"
        assert [len(document.entries) for document in got[1:]] == [3, 3]  # type: ignore[attr-defined]
        assert len(box._all) == 1 and box._all[0].process.is_alive()


def test_a_worker_that_dies_fails_its_own_task_only() -> None:
    with Sandbox(workers=1, timeout=60) as box:
        warm(box)
        pid = box._all[0].process.pid
        assert pid is not None

        async def main() -> list[object]:
            async with Driver.attached(box) as driver:
                assert driver is not None
                os.kill(pid, signal.SIGSTOP)  # both tasks wait on it, one in its pipe
                first = asyncio.ensure_future(driver.parse(RSS, url="https://x/1", name="one"))
                second = asyncio.ensure_future(driver.parse(RSS, url="https://x/2", name="two"))
                await asyncio.sleep(0.2)
                os.kill(pid, signal.SIGKILL)
                results: list[object] = []
                for future in (first, second):
                    try:
                        results.append(len((await future).entries))
                    except SourceError as error:
                        results.append(error.message)
                return results

        assert asyncio.run(main()) == ["parser process died (exit code -9); document refused", 3]
        assert box.parse(RSS, url="https://x/3", name="three").entries


def test_a_parse_asked_from_a_thread_meanwhile_runs_on_the_loop() -> None:
    """A local file is read in a thread, which asks the sandbox: while the driver holds
    every worker, the task goes to the loop instead of waiting for a worker forever."""
    with Sandbox(workers=2, timeout=60) as box:
        warm(box)

        async def main() -> list[int]:
            async with Driver.attached(box) as driver:
                assert driver is not None
                looped = [driver.parse(RSS, url=f"https://x/{i}", name=str(i)) for i in range(6)]
                threaded = [
                    asyncio.to_thread(box.parse, RSS, url=f"https://y/{i}", name=str(i))
                    for i in range(6)
                ]
                got = await asyncio.gather(*looped, *threaded)
                return [len(document.entries) for document in got]

        assert asyncio.run(main()) == [3] * 12
        assert len(box._all) == 2


def test_an_interrupted_read_stops_the_worker_it_left_busy() -> None:
    with Sandbox(workers=1, timeout=60) as box:
        warm(box)
        busy = box._all[0].process

        async def main() -> None:
            async with Driver.attached(box) as driver:
                assert driver is not None
                task = asyncio.ensure_future(
                    driver.parse(big_feed(20_000), url="https://x/big", name="big")
                )
                await asyncio.sleep(0.05)
                task.cancel()

        asyncio.run(main())
        busy.join(timeout=10)
        assert not busy.is_alive()  # its answer would have come to nobody
        assert box._all == []
        # A new worker reads the next document.
        assert len(box.parse(RSS, url="https://x/ok", name="ok").entries) == 3


def test_closing_the_sandbox_meanwhile_fails_the_parses_at_once() -> None:
    with Sandbox(workers=1, timeout=60) as box:
        warm(box)

        async def main() -> list[str]:
            async with Driver.attached(box) as driver:
                assert driver is not None
                stop_workers(box)
                tasks = [driver.parse(RSS, url=f"https://x/{i}", name=str(i)) for i in range(4)]
                threading.Timer(0.2, box.close).start()
                got = await asyncio.gather(*tasks, return_exceptions=True)
                return [str(error) for error in got]

        messages = asyncio.run(main())
    assert messages == [
        f"{i} (https://x/{i}): not parsed: the parser workers were stopped" for i in range(4)
    ]


def test_only_one_driver_holds_the_workers() -> None:
    with Sandbox(workers=1, timeout=60) as box:

        async def main() -> tuple[bool, bool]:
            async with Driver.attached(box) as first, Driver.attached(box) as second:
                return first is not None, second is not None

        assert asyncio.run(main()) == (True, False)

        async def again() -> bool:
            async with Driver.attached(box) as driver:
                return driver is not None

        assert asyncio.run(again())  # let go: another may hold them


def test_a_closed_sandbox_has_no_driver() -> None:
    box = Sandbox(workers=1, timeout=60)
    box.close()

    async def main() -> bool:
        async with Driver.attached(box) as driver:
            return driver is None

    assert asyncio.run(main())


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_are_started_when_none_were_warmed(workers: int) -> None:
    with Sandbox(workers=workers, timeout=60) as box:
        assert parse_all(box, [(str(i), RSS) for i in range(5)]) == parse_all(
            box, [(str(i), RSS) for i in range(5)]
        )
        assert len(box._all) == workers


def test_workers_that_run_out_of_time_are_replaced_while_threads_wait_on_the_loop() -> None:
    """Local files are parsed in the loop's threads, which wait on the driver: when both
    workers run past their time, their replacements do not queue behind those threads."""
    with Sandbox(workers=2, timeout=0.5) as box:
        warm(box)
        stop_workers(box)  # two parses that never end

        def one(index: int) -> object:
            try:
                return len(box.parse(RSS, url=f"file:///{index}", name=str(index)).entries)
            except SourceError as error:
                return error.message

        async def main() -> list[object]:
            async with Driver.attached(box) as driver:
                assert driver is not None
                reads = (asyncio.to_thread(one, index) for index in range(10))
                return list(await asyncio.wait_for(asyncio.gather(*reads), timeout=60))

        got = asyncio.run(main())
    late = "parsing took longer than 0.5 s; stopped"
    assert got.count(late) == 2 and got.count(3) == 8


def test_closing_the_sandbox_with_every_worker_busy_ends_each_parse_once() -> None:
    for from_loop in (False, True):
        with Sandbox(workers=2, timeout=60) as box:
            warm(box)
            stop_workers(box)

            async def main(on_loop: bool) -> list[str]:
                async with Driver.attached(box) as driver:
                    assert driver is not None
                    tasks = [
                        asyncio.ensure_future(driver.parse(RSS, url=f"https://x/{i}", name=str(i)))
                        for i in range(4)
                    ]
                    await asyncio.sleep(0.2)
                    if on_loop:  # (an error handler's, say) and the block ends at once
                        box.close()
                    else:
                        threading.Thread(target=box.close).start()
                        await asyncio.wait(tasks)
                got = await asyncio.gather(*tasks, return_exceptions=True)
                return [getattr(error, "message", repr(error)) for error in got]

            assert (
                asyncio.run(main(from_loop)) == ["not parsed: the parser workers were stopped"] * 4
            )
            assert box._all == [] and box._started == 0


def test_a_read_cancelled_while_its_worker_starts_leaves_the_worker_to_the_sandbox() -> None:
    with Sandbox(workers=1, timeout=60) as box:  # not warmed: the first parse starts one

        async def main() -> None:
            async with Driver.attached(box) as driver:
                assert driver is not None
                task = asyncio.ensure_future(driver.parse(RSS, url="https://x/1", name="one"))
                await asyncio.sleep(0)  # it is starting the worker now
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        # The worker started is the sandbox's: the next parse uses it, and no other.
        assert len(box.parse(RSS, url="https://x/2", name="two").entries) == 3
        assert box._started == 1 and len(box._all) == 1


def test_a_loop_closed_without_letting_go_leaves_the_sandbox_working() -> None:
    """Not asyncio.run's way: a loop stopped, then closed, inside the driver's block. A
    parse asked then stops the workers the driver held and starts another. (In a child
    process: the block left open warns as its generator is collected.)"""
    script = textwrap.dedent(
        """
        import asyncio, os
        from pathlib import Path
        from aggregator.live.driver import Driver
        from aggregator.live.sandbox import Sandbox

        RSS = Path(os.environ["RSS"]).read_bytes()
        box = Sandbox(workers=1, timeout=20)
        loop = asyncio.new_event_loop()

        async def main():
            async with Driver.attached(box) as driver:
                await driver.parse(RSS, url="https://x/1", name="1")
                loop.call_soon(loop.stop)
                await asyncio.sleep(3600)

        try:
            loop.run_until_complete(main())
        except RuntimeError:
            pass
        held = box._driver._lanes[0].worker.process
        loop.close()
        document = box.parse(RSS, url="https://x/2", name="2")
        held.join(timeout=10)
        print(len(document.entries), held.is_alive(), box._started, flush=True)
        box.close()
        os._exit(0)
        """
    )
    done = run_child(script)
    assert done.stdout.split() == ["3", "False", "1"], done.stderr


def test_a_run_reading_known_sources_loads_the_parsers_in_one_worker() -> None:
    """Forked ahead (as a run does), the second worker loads the parsers only with its
    first task, and a driver gives it one only for a document of a source not read
    before (no item digests known) while the first has no room: a steady poll's
    documents, their items mostly known, all go to the first. (In a child process: the
    workers are forked only from a process running one thread.)"""
    script = textwrap.dedent(
        """
        import asyncio, json, os
        from pathlib import Path
        from aggregator.live.driver import Driver
        from aggregator.live.sandbox import Sandbox

        RSS = Path(os.environ["RSS"]).read_bytes()
        box = Sandbox(workers=2, timeout=20, fork_ahead=True)
        box.warm()

        def lazy():
            return sorted(worker.lazy for worker in box._all)

        async def read(known, count):
            async with Driver.attached(box) as driver:
                asked = [
                    driver.parse(RSS, url=f"https://x/{n}", name=str(n), known=known)
                    for n in range(count)
                ]
                return [len(document.entries) for document in await asyncio.gather(*asked)]

        started = lazy()
        light = asyncio.run(read(frozenset({"a digest"}), 12))
        after_light = lazy()
        heavy = asyncio.run(read(frozenset(), 12))
        print(json.dumps([started, after_light, lazy(), light, heavy]), flush=True)
        box.close()
        """
    )
    done = run_child(script)
    assert done.returncode == 0, done.stderr
    started, after_light, after_heavy, light, heavy = json.loads(done.stdout.splitlines()[-1])
    assert started == [False, True]  # the second has loaded nothing
    assert after_light == [False, True]  # twelve known sources' documents: one worker
    assert after_heavy == [False, False]  # new sources, the first busy: the second too
    assert light == heavy == [light[0]] * 12 and light[0] > 0
