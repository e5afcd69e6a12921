"""The parser sandbox: a runaway parse is stopped, and the sandbox carries on."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import SourceError
from aggregator.live.sandbox import Sandbox

FEEDS = Path(__file__).parent / "data" / "feeds"
RSS = (FEEDS / "rss20.xml").read_bytes()


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
    with another_thread():  # the workers then start from the fork server, in a thread
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
    if box._warming is not None:
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


@contextlib.contextmanager
def another_thread() -> Iterator[None]:
    """A second thread running meanwhile (as in serve)."""
    import threading

    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s*(\d+)", status, re.M)[1])  # type: ignore[index]


def run_script(body: str, *, timeout: float = 60) -> dict[str, Any]:
    """Run ``body`` in a new interpreter (one thread, as a run starts) and read back the
    JSON it prints last."""
    prelude = textwrap.dedent(
        f"""
        import json, os, re, socket, sys, tempfile
        from pathlib import Path
        from aggregator.live.sandbox import Sandbox
        data = Path({str(FEEDS / "rss20.xml")!r}).read_bytes()
        def parent(pid):
            status = Path(f"/proc/{{pid}}/status").read_text()
            return int(re.search(r"PPid:\\s*(\\d+)", status)[1])
        def held(pid):
            return sorted(os.readlink(f"/proc/{{pid}}/fd/{{fd}}")
                          for fd in os.listdir(f"/proc/{{pid}}/fd"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_run_forks_its_workers_and_they_hold_nothing_of_it() -> None:
    """As a run starts (one thread, fork_ahead): the workers are its own children, hold
    none of the files or sockets it had open (its store, its lock, a listening socket,
    each other's pipes) but their own pipe, and parse."""
    report = run_script(
        """
        kept = tempfile.NamedTemporaryFile()
        listening = socket.create_server(("127.0.0.1", 0))
        box = Sandbox(workers=2, timeout=20, fork_ahead=True)
        box.warm()
        pids = [w.process.pid for w in box._all]
        entries = [len(box.parse(data, url="https://e.org/a", name="a").entries) for _ in range(4)]
        print(json.dumps({"me": os.getpid(), "parents": [parent(p) for p in pids],
            "thread": box._warming is not None, "entries": entries,
            "held": [held(p) for p in pids], "file": kept.name,
            "socket": os.readlink(f"/proc/self/fd/{listening.fileno()}")}))
        box.close()
        """
    )
    # Their parent is the process itself: forked, not from the fork server.
    assert report["parents"] == [report["me"]] * 2 and not report["thread"]
    assert report["entries"] == [3, 3, 3, 3]
    for held in report["held"]:
        assert report["file"] not in held and report["socket"] not in held
        assert not [f for f in held if f.startswith("/") and not f.startswith("/dev/")]
        assert len([f for f in held if f.startswith("socket:")]) == 1  # its own pipe


def test_forked_workers_end_when_the_run_is_killed() -> None:
    """Killed (SIGKILL: nothing of it runs), the run leaves no worker behind: each sees
    the end of its pipe, having closed the run's ends of the others'."""
    import signal
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, time\n"
            "from aggregator.live.sandbox import Sandbox\n"
            "box = Sandbox(workers=2, timeout=20, fork_ahead=True)\n"
            "box.warm()\n"
            "print(json.dumps([w.process.pid for w in box._all]), flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with process:
        assert process.stdout is not None
        pids = json.loads(process.stdout.readline())
        assert len(pids) == 2
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)


def running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return re.search(r"^State:\s*Z", status, re.M) is None  # a zombie has ended


def test_without_fork_ahead_the_workers_come_from_the_fork_server() -> None:
    report = run_script(
        """
        box = Sandbox(workers=1, timeout=20)
        box.warm()
        box._warming.join(timeout=30)
        pids = [w.process.pid for w in box._all]
        n = len(box.parse(data, url="https://e.org/a", name="a").entries)
        print(json.dumps({"me": os.getpid(), "parents": [parent(p) for p in pids], "n": n}))
        box.close()
        """
    )
    assert report["parents"] != [report["me"]] and report["n"] == 3


@pytest.mark.parametrize("fork_ahead", [True, False], ids=["forked", "fork server"])
def test_a_parse_fits_under_a_memory_limit_the_process_was_given(fork_ahead: bool) -> None:
    """``ulimit -v`` as large as the parse's own limit: the worker keeps within it
    rather than failing to raise its limit past it (found by review)."""
    report = run_script(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        box = Sandbox(workers=1, timeout=20, memory=1 << 30, fork_ahead={fork_ahead})
        box.warm()
        n = len(box.parse(data, url="https://e.org/a", name="a").entries)
        print(json.dumps({{"n": n}}))
        box.close()
        """
    )
    assert report == {"n": 3}


def test_workers_come_from_the_fork_server_while_other_threads_run() -> None:
    with Sandbox(workers=1, timeout=20) as box:
        with another_thread():
            box.warm()
            assert box._warming is not None
            box._warming.join(timeout=30)
        [worker] = box._all
        assert parent_of(worker.process.pid) != os.getpid()
        assert len(box.parse(RSS, url="https://feeds.example/a", name="a").entries) == 3


def test_a_worker_cannot_raise_its_own_memory_limit() -> None:
    report = run_script(
        """
        box = Sandbox(workers=1, timeout=20, memory=256 << 20, fork_ahead=True)
        box.warm()
        box.parse(data, url="https://e.org/a", name="a")
        [worker] = box._all
        limits = Path(f"/proc/{worker.process.pid}/limits").read_text()
        line = next(l for l in limits.splitlines() if l.startswith("Max address space"))
        print(json.dumps({"fields": line.split()[3:5]}))
        box.close()
        """
    )
    soft, hard = report["fields"]
    assert soft == hard != "unlimited"


# -- calls: trusted work run in a worker (aggregator.site.parts renders a large publish there)


def _double(value: int) -> int:
    return value * 2


def _fail(message: str) -> None:
    raise ValueError(message)


def _unpicklable() -> object:
    return lambda: None  # a lambda cannot be pickled back


def _pid() -> int:
    return os.getpid()


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def test_a_call_runs_in_a_worker_and_its_result_comes_back() -> None:
    with Sandbox(workers=1, timeout=20) as box:
        assert box.call(_double, 21) == 42
        assert box.call(_pid) != os.getpid()
        assert box.call(_pid) == box._all[0].process.pid  # the same worker, reused


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        (_fail, ("no such thing",), r"^ValueError: no such thing$"),
        (_unpicklable, (), r"^its result could not be sent back: "),
    ],
    ids=["raises", "unpicklable result"],
)
def test_a_failed_call_says_why_and_the_worker_carries_on(
    function: Any, args: tuple[object, ...], message: str
) -> None:
    from aggregator.live.sandbox import WorkerError

    with Sandbox(workers=1, timeout=20) as box:
        with pytest.raises(WorkerError, match=message):
            box.call(function, *args)
        assert len(box.parse(RSS, url="https://feeds.example/ok", name="ok").entries) == 3
        assert box.call(_double, 2) == 4


def test_a_call_past_its_time_is_stopped_with_its_worker() -> None:
    from aggregator.live.sandbox import WorkerError

    with Sandbox(workers=1, timeout=20) as box:
        first = box.call(_pid)  # (the worker's start is not this test's to time)
        box.timeout = 0.2
        with pytest.raises(WorkerError, match=r"took longer than 0.2 s; stopped"):
            box.call(_sleep, 30)
        box.timeout = 20
        assert box.call(_pid) != first  # a new worker
        assert len(box.parse(RSS, url="https://feeds.example/ok", name="ok").entries) == 3


def test_a_call_to_a_closed_sandbox_is_refused() -> None:
    from aggregator.live.sandbox import WorkerError

    box = Sandbox(workers=1, timeout=20)
    box.close()
    with pytest.raises(WorkerError, match="the workers were stopped"):
        box.call(_double, 1)


# -- tasks queued on a busy worker (DEPTH) -------------------------------------------------


def _exit() -> None:
    os._exit(3)


def _hold(seconds: float, value: int) -> int:
    import time

    time.sleep(seconds)
    return value


def test_answers_come_back_to_whoever_asked() -> None:
    """Tasks queued on a worker get their own answers, in any number of threads."""
    from concurrent.futures import ThreadPoolExecutor

    with Sandbox(workers=2, timeout=30) as box, ThreadPoolExecutor(12) as pool:
        box.warm()
        doubled = list(pool.map(lambda n: box.call(_double, n), range(300)))
        parsed = list(
            pool.map(
                lambda n: box.parse(RSS, url=f"https://feeds.example/{n}", name=str(n)),
                range(40),
            )
        )
    assert doubled == [2 * n for n in range(300)]
    assert all(len(document.entries) == 3 for document in parsed)


@pytest.mark.parametrize("ending", ["crash", "time"])
def test_a_task_queued_behind_one_that_ends_its_worker_is_sent_again(ending: str) -> None:
    """With one worker, a second task waits on it behind the first; when the first ends
    the worker (a crash, its time up), the second, never started there, is read by the
    next worker: its source is not blamed for another's document."""
    import threading
    import time

    from aggregator.live.sandbox import WorkerError

    with Sandbox(workers=1, timeout=30) as box:
        box.warm()
        box.call(_double, 1)  # started
        box.timeout = 2
        failed: list[BaseException] = []

        def first() -> None:
            try:
                box.call(_exit) if ending == "crash" else box.call(_sleep, 60)
            except WorkerError as error:
                failed.append(error)

        thread = threading.Thread(target=first)
        thread.start()
        time.sleep(0.3)  # the first is on the worker
        assert box.call(_hold, 0.1, 7) == 7  # queued behind it, then sent again
        thread.join()
        assert len(failed) == 1
        assert re.search("died|took longer", str(failed[0]))
        assert len(box.parse(RSS, url="https://feeds.example/ok", name="ok").entries) == 3


def test_a_large_document_queued_behind_a_task_out_of_time_is_read_elsewhere() -> None:
    """A document larger than the pipe holds waits in its send behind the task on the
    worker; when that task's time is up and the worker is stopped, the send fails under
    it, and the document goes to the next worker (found by review: it failed with a
    TypeError, blamed on its source)."""
    import threading
    import time

    from aggregator.live.sandbox import WorkerError

    item = b"<item><title>x</title><guid isPermaLink='false'>g</guid></item>"
    large = b"<rss version='2.0'><channel><title>t</title>" + item * 40_000 + b"</channel></rss>"
    with Sandbox(workers=1, timeout=30) as box:
        box.call(_double, 1)  # started
        box.timeout = 3
        failed: list[BaseException] = []

        def first() -> None:
            try:
                box.call(_sleep, 60)
            except WorkerError as error:
                failed.append(error)

        thread = threading.Thread(target=first)
        thread.start()
        time.sleep(0.3)
        document = box.parse(large, url="https://feeds.example/large", name="large")
        thread.join()
        assert len(document.entries) > 0
        assert [str(e) for e in failed] == ["took longer than 3 s; stopped"]


def test_a_task_that_cannot_be_pickled_costs_no_worker() -> None:
    """It fails where it is asked, before it takes a place on a worker; the task the
    worker is on meanwhile is not blamed (found by review)."""
    import threading
    import time

    with Sandbox(workers=1, timeout=30) as box:
        box.call(_double, 1)
        pid = box.call(_pid)
        answers: list[int] = []
        thread = threading.Thread(target=lambda: answers.append(box.call(_hold, 1.0, 5)))
        thread.start()
        time.sleep(0.2)
        with pytest.raises(Exception, match="pickle"):
            box.call(_double, lambda: None)
        thread.join()
        assert answers == [5]
        assert box.call(_pid) == pid  # the same worker


def test_a_worker_whose_run_was_killed_mid_parse_ends_quietly() -> None:
    """Killed while a worker parses for it, the run leaves no traceback on its terminal
    (under cron, in the mail): the worker finds the pipe closed and ends."""
    import signal
    import time

    script = (
        "import sys, threading\n"
        "from aggregator.live.sandbox import Sandbox\n"
        "items = ''.join(f'<item><title>Story {n}</title><description>'\n"
        "    + 'word ' * 40 + f'</description><guid>g{n}</guid></item>' for n in range(30000))\n"
        'data = (\'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>\'\n'
        "    + items + '</channel></rss>').encode()\n"
        "box = Sandbox(workers=1, timeout=60, fork_ahead=True)\n"
        "box.warm()\n"
        "threading.Thread(target=lambda: box.parse(data, url='https://e.org/a', name='a'),\n"
        "    daemon=True).start()\n"
        "print(box._all[0].process.pid, flush=True)\n"
        "threading.Event().wait(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    worker = int(process.stdout.readline())
    time.sleep(0.3)  # the document is sent and being parsed
    assert running(worker)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running(worker):
        time.sleep(0.05)
    assert not running(worker)
    errors = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert errors == "", errors


def test_ctrl_c_is_held_back_while_a_worker_is_forked() -> None:
    """A KeyboardInterrupt inside the interpreter's fork hooks is swallowed and leaves a
    module lock held: the run then hung for ever, holding its write lock (found by
    review). While this process forks a worker, SIGINT is blocked, and taken after.
    (In a new interpreter: a worker is forked only from a process of one thread.)"""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import os, signal
        from aggregator.live.sandbox import Sandbox
        masks = []
        fork = os.fork
        def watched():
            masks.append(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
            return fork()
        os.fork = watched
        with Sandbox(workers=1, timeout=20, fork_ahead=True) as box:
            box.warm()
            after = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            rss = open(os.environ["RSS"], "rb").read()
            entries = len(box.parse(rss, url="https://feeds.example/ok", name="ok").entries)
        print(masks, after, entries)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RSS": str(FEEDS / "rss20.xml")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[True]", "False", "3"], done.stdout
