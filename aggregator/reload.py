"""``aggregator serve`` applying an edited config.toml: a restart in place, listening all
along.

A running server looks at its config file every :data:`WATCH` seconds. A change that
stays put for one look (an editor's save; ``aggregator sources add`` renaming its new
file into place) is read. A file that does not load is said in one line, once, and the
server goes on as it is; one that loads to the same configuration (a comment, a file
only touched) changes nothing. One that loads to another configuration, and passes what
a server checks at its start (its store opens, its new address is free), makes the
server stop as SIGTERM stops it (a running read has ``[serve] shutdown_grace``) and start
again in the same process (``exec``: the same process id, command line and environment),
with:

* its listening socket, kept open throughout: a connection made meanwhile waits in the
  socket's queue and is answered by the new server, none is refused;
* the very bytes of the config it approved (a second save meanwhile, even a broken one,
  is the new server's to look at, as any edit is);
* its sources' schedule: a source is asked when it is due, not again at once;
* the children the stopped server leaves (multiprocessing's helpers), which the new one
  reaps as they end.

SIGHUP asks for a look at once (ignored while the server restarts, never its end). A
SIGTERM or Ctrl-C while it stops for a restart stops it for good.

A restart rather than changes made in the running server: what a configuration sets
(sources and their schedules, topics, the site, the store) is then exactly what a
fresh start with it does, which is what every other part is built and tested for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.errors import AggregatorError

if TYPE_CHECKING:
    from aggregator.config import Config

log = logging.getLogger("aggregator")

# Seconds between looks at the config file (a change is applied one look after it stops).
WATCH = 1.0

# What a restart hands the new server, in its environment: the listening socket's
# descriptor; a descriptor holding the approved config's bytes and, after a newline,
# the version of the file they were read from; the process ids of children to reap.
LISTEN_FD = "AGGREGATOR_LISTEN_FD"
CONFIG_FD = "AGGREGATOR_CONFIG_FD"
REAP = "AGGREGATOR_REAP"

Signature = tuple[int, int, int, int] | None


def signature(path: Path) -> Signature:
    """What tells one version of the file from another: its inode, device, time of last
    change and size (None: it cannot be read just now)."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_dev, found.st_mtime_ns, found.st_size)


class Reload:
    """Whether and when the running server restarts to apply its edited config."""

    def __init__(
        self,
        path: Path,
        running: Config,
        read: Signature,
        address: Callable[[Config], tuple[str, int]] | None = None,
    ) -> None:
        self.path = path
        self.running = running  # as loaded (before serve adjusts its base_url)
        # Where a server with a config listens (its --host and --port count too).
        self.address = address or (lambda config: (config.serve.host, config.serve.port))
        self.listening: tuple[str, int] | None = None  # where this server listens
        self.requested = threading.Event()  # set once: the server is to restart
        self.cancelled = threading.Event()  # a stop came: no restart
        self.stopping = threading.Event()  # either: the server is to stop (serve's until)
        self.asked = threading.Event()  # SIGHUP: look now, without waiting for the file
        self.listen_fd: int | None = None  # the listener, kept open for the new server
        # Each source's health and next read, for the new server (set by serve).
        self.health: Callable[[], list[dict[str, Any]]] = list
        self._approved: bytes | None = None  # the config the restart applies
        self._applied = read  # the version of the file the running config was read from
        self._pending: Signature = read
        self._said: Signature = read  # the version whose fault was said (once each)

    def due(self) -> bool:
        """Look at the file (see the module): True when it holds another configuration,
        which a restart applies."""
        forced = self.asked.is_set()
        self.asked.clear()
        found = signature(self.path)
        if found == self._applied and not forced:
            self._pending = found
            return False
        if found != self._pending and not forced:
            self._pending = found  # being written, maybe: look again once it stays put
            return False
        from aggregator.config import load_config, read_config

        try:
            raw = read_config(self.path)
            config = load_config(self.path, raw)
            if config != self.running:
                self._check(config)
        except AggregatorError as error:
            if found != self._said or forced:
                log.error(
                    "%s; serve goes on with the configuration it has, and applies the file "
                    "once it can",
                    error,
                )
                self._said = found
            return False
        self._applied = self._said = found
        if config == self.running:
            if forced:
                # (Asked for by SIGHUP: the answer is shown as a warning is.)
                log.warning("%s: the configuration is the one running; nothing to apply", self.path)
            return False
        self._approved = raw
        return True

    def _check(self, config: Config) -> None:
        """What a server started with ``config`` would refuse at its start, refused here,
        before this one stops (raises AggregatorError): what ``serve`` checks first, its
        store opened, its new address free. (An address on this server's own port can
        only be tried once it lets the port go: its host is looked up.)"""
        from aggregator.pipeline import check_setup
        from aggregator.server import PortInUse, bind
        from aggregator.store import open_store

        check_setup(config)
        if config.store != self.running.store:
            with open_store(config.store):
                pass
        host, port = self.address(config)
        if (host, port) == self.address(self.running):
            return
        if self.listening is not None and port in (0, self.listening[1]):
            try:
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            except (OSError, UnicodeError) as error:
                raise PortInUse(f"cannot listen on {host}:{port}: {error}") from error
            return
        bind(host, port).close()  # PortInUse (an AggregatorError) if it is not free

    def request(self, listener: socket.socket) -> bool:
        """Restart once the server has stopped: the listener is kept open (a descriptor
        of its own) for the new one. False when a stop came first (no restart)."""
        if self.requested.is_set() or self.cancelled.is_set():
            return self.requested.is_set() and not self.cancelled.is_set()
        kept = os.dup(listener.fileno())
        os.set_inheritable(kept, True)
        self.listen_fd = kept
        log.warning("%s changed: restarting to apply it (connections wait meanwhile)", self.path)
        self.requested.set()
        self.stopping.set()
        return True

    def cancel(self) -> None:
        """A stop (SIGTERM, Ctrl-C) came: no restart, whatever was asked, and the server
        stops (also one that has not begun serving yet: found by review, a stop between
        the server's start and uvicorn's own handlers was lost). (Only sets flags: a
        signal handler may call it.)"""
        self.cancelled.set()
        self.stopping.set()

    @property
    def restarting(self) -> bool:
        return self.requested.is_set() and not self.cancelled.is_set()

    def restart(self) -> None:
        """This process, started again with its own command line, the approved config and
        its sources' health (call once the server and its workers have stopped); returns
        only when a stop came meanwhile. If the system refuses, one line says so and the
        process ends: the socket closes with it."""
        assert self.listen_fd is not None and self._approved is not None
        # A stop from here on is held (the mask and what is pending outlive the exec)
        # and is the new server's first act (found by review: one came between the last
        # look and the exec, and was lost).
        stops = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        if self.cancelled.is_set():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            return
        # Ignored until the new server looks for it: a SIGHUP meanwhile would end it.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        payload = {
            "signature": None if self._applied is None else list(self._applied),
            "config": self._approved.decode("utf-8"),  # (load_config decoded it)
            "health": self.health(),
        }
        handed = os.memfd_create("aggregator-config", 0)
        os.write(handed, json.dumps(payload).encode())
        os.lseek(handed, 0, os.SEEK_SET)
        os.set_inheritable(handed, True)
        environment = {
            **os.environ,
            LISTEN_FD: str(self.listen_fd),
            CONFIG_FD: str(handed),
            REAP: ",".join(map(str, _children())),
        }
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        command = [sys.executable, *sys.orig_argv[1:]]
        try:
            os.execve(sys.executable, command, environment)
        except OSError as error:
            with contextlib.suppress(Exception):
                sys.stderr.write(
                    f"error: cannot start serve again to apply {self.path}: "
                    f"{error.strerror or error}; start it again yourself\n"
                )
                sys.stderr.flush()
            os._exit(1)


@dataclass(frozen=True, slots=True)
class Handed:
    """What a restart hands the new server (see the module)."""

    config: bytes  # the approved config file's bytes
    read: Signature  # the version of the file they are
    health: list[dict[str, Any]]  # each source's health and next read (Scheduler.adopt)


def handed_over() -> Handed | None:
    """What a restart handed this server; None when it was not started by a restart.
    Also starts reaping the children the stopped server left. (Call first.)"""
    _reap_left()
    given = os.environ.pop(CONFIG_FD, None)
    if given is None:
        return None
    try:
        with os.fdopen(int(given), "rb") as handed:
            data = json.loads(handed.read())
        read = data["signature"]
        return Handed(
            data["config"].encode("utf-8"),
            None if read is None else (int(read[0]), int(read[1]), int(read[2]), int(read[3])),
            list(data["health"]),
        )
    except (ValueError, OSError, KeyError, TypeError, IndexError, AttributeError):
        return None  # not ours (a stray setting): started as ever


def hold_stops_as_restarted() -> None:
    """In a server a restart started: a stop held across the exec (see
    :meth:`Reload.restart`), or one that comes before the server's own handlers, ends it
    with one line and exit 0, as a stop does."""

    def stopped(*_: object) -> None:
        log.warning("stopped while restarting to apply the edited config")
        raise SystemExit(0)

    stops = {signal.SIGTERM, signal.SIGINT}
    for number in stops:
        signal.signal(number, stopped)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)


def _children() -> list[int]:
    """The process ids of this process's children (Linux's /proc; none elsewhere)."""
    me = os.getpid()
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            if len(fields) > 1 and int(fields[1]) == me:
                found.append(int(entry.name))
    return found


def _reap_left() -> None:
    """Wait, in the background, for the children a stopped server left (found by
    review: two a restart stayed zombies for the server's life)."""
    given = os.environ.pop(REAP, "")
    pids = [int(p) for p in given.split(",") if p.isdigit()]
    for pid in pids:
        threading.Thread(
            target=_wait_for, args=(pid,), name=f"aggregator-reap-{pid}", daemon=True
        ).start()


def _wait_for(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for a server to listen on ``host``:``port``: the one a restart
    handed over (see the module) when it listens there (``port`` 0: anywhere on
    ``host``), else a new one (aggregator.server.bind: PortInUse if it cannot). A new
    address that cannot be listened on, after a restart, is said in one line and the
    server goes on where it listened (found by review: it ended)."""
    from aggregator.server import PortInUse, bind

    handed = _handed_listener()
    if handed is not None and _listens_at(handed, host, port):
        return handed
    try:
        listener = bind(host, port)
    except PortInUse as error:
        if handed is None:
            raise
        where = handed.getsockname()[:2]
        if port not in (0, where[1]):
            _said_going_on(error, where)
            return handed
        # The same port on another host may be refused for the handed socket itself
        # (found by review: 0.0.0.0 beside 127.0.0.1): let it go, and try again; if the
        # new address still cannot be taken, the old one is taken again.
        handed.close()
        try:
            return bind(host, port)
        except PortInUse as again:
            _said_going_on(again, where)
            return bind(where[0], where[1])
    if handed is not None:
        handed.close()
    return listener


def _said_going_on(error: Exception, where: tuple[str, int]) -> None:
    log.error(
        "%s; serve goes on at %s:%s, where it listened (set [serve] host and port to where "
        "it can listen)",
        error,
        where[0],
        where[1],
    )


def _handed_listener() -> socket.socket | None:
    """The listening TCP socket a restart handed over, if any."""
    given = os.environ.pop(LISTEN_FD, None)
    if given is None:
        return None
    try:
        listener = socket.socket(fileno=int(given))
    except (ValueError, OSError):
        return None  # not a socket of ours (a stray setting): bind as ever
    try:
        listening = listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    if listener.type != socket.SOCK_STREAM or not listening:
        listener.close()
        return None
    listener.set_inheritable(True)
    return listener


def _listens_at(listener: socket.socket, host: str, port: int) -> bool:
    try:
        where = listener.getsockname()[:2]
        wanted = {
            info[4][:2]
            for info in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        }
    except (OSError, UnicodeError):
        return False
    return any(address == where[0] and number in (where[1], 0) for address, number in wanted)
