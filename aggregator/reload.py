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
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

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
        self.asked = threading.Event()  # SIGHUP: look now, without waiting for the file
        self.listen_fd: int | None = None  # the listener, kept open for the new server
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

    def request(self, listener: socket.socket) -> None:
        """Restart once the server has stopped: the listener is kept open (a descriptor
        of its own) for the new one."""
        if self.requested.is_set() or self.cancelled.is_set():
            return
        kept = os.dup(listener.fileno())
        os.set_inheritable(kept, True)
        self.listen_fd = kept
        log.warning("%s changed: restarting to apply it (connections wait meanwhile)", self.path)
        self.requested.set()

    def cancel(self) -> None:
        """A stop (SIGTERM, Ctrl-C) came: no restart, whatever was asked. (Only sets a
        flag: a signal handler may call it.)"""
        self.cancelled.set()

    @property
    def restarting(self) -> bool:
        return self.requested.is_set() and not self.cancelled.is_set()

    def restart(self) -> NoReturn:
        """This process, started again with its own command line and the approved config
        (call once the server and its workers have stopped). If the system refuses, one
        line says so and the process ends: the socket closes with it."""
        assert self.listen_fd is not None and self._approved is not None
        # Ignored until the new server looks for it: a SIGHUP meanwhile would end it.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        handed = os.memfd_create("aggregator-config", 0)
        os.write(handed, _versioned(self._applied) + b"\n" + self._approved)
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


def _versioned(found: Signature) -> bytes:
    return b"" if found is None else ",".join(map(str, found)).encode()


def handed_config() -> tuple[bytes, Signature] | None:
    """The config a restart approved (its bytes, and the version of the file they are),
    for the new server; None when this server was not started by a restart. Also starts
    reaping the children the stopped server left."""
    _reap_left()
    given = os.environ.pop(CONFIG_FD, None)
    if given is None:
        return None
    try:
        with os.fdopen(int(given), "rb") as handed:
            data = handed.read()
    except (ValueError, OSError):
        return None
    version, _, raw = data.partition(b"\n")
    try:
        numbers = tuple(int(n) for n in version.split(b","))
    except ValueError:
        return raw, None
    found: Signature = (
        (numbers[0], numbers[1], numbers[2], numbers[3]) if len(numbers) == 4 else None
    )
    return raw, found


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


def inherited_listener(host: str, port: int) -> socket.socket | None:
    """The listening socket a restart handed over (see the module), when it listens
    where this server is to listen (``port`` 0: anywhere on ``host``); else None, and a
    socket handed over is closed (the config moved the server)."""
    given = os.environ.pop(LISTEN_FD, None)
    if given is None:
        return None
    try:
        listener = socket.socket(fileno=int(given))
    except (ValueError, OSError):
        return None  # not a socket of ours (a stray setting): bind as ever
    try:
        listening = listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        where = listener.getsockname()[:2]
        wanted = {
            info[4][:2]
            for info in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        }
    except (OSError, UnicodeError):
        listener.close()
        return None
    fits = any(address == where[0] and number in (where[1], 0) for address, number in wanted)
    if listener.type != socket.SOCK_STREAM or not listening or not fits:
        listener.close()
        return None
    listener.set_inheritable(True)
    return listener
