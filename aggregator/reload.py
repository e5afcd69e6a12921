"""``aggregator serve`` applying an edited config.toml: a restart in place, listening all
along.

A running server looks at its config file every :data:`WATCH` seconds. A change that
stays put for one look (an editor's save; ``aggregator sources add`` renaming its new
file into place) is read. A file that does not load is said in one line, once, and the
server goes on as it is; one that loads to the same configuration (a comment, a file
only touched) changes nothing. One that loads to another configuration makes the
server stop as SIGTERM stops it (a running read has ``[serve] shutdown_grace``) and
start again in the same process (``exec``: the same process id, command line and
environment), keeping its listening socket open throughout: a connection made
meanwhile waits in the socket's queue and is answered by the new server, none is
refused. SIGHUP asks for the same at once.

A restart rather than changes made in the running server: what a configuration sets
(sources and their schedules, topics, the site, the store) is then exactly what a
fresh start with it does, which is what every other part is built and tested for; and
a restart asks nothing of the sources it need not (a source whose last answer is still
fresh is not asked: aggregator.schedule).
"""

from __future__ import annotations

import contextlib
import logging
import os
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

# The environment variable that hands the listening socket's descriptor to the server
# that a restart starts (the descriptor number, in decimal).
LISTEN_FD = "AGGREGATOR_LISTEN_FD"

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
        self.requested = threading.Event()  # set once: the server is to restart
        self.asked = threading.Event()  # SIGHUP: look now, without waiting for the file
        self.listen_fd: int | None = None  # the listener, kept open for the new server
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
        from aggregator.config import load_config

        try:
            config = load_config(self.path)
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
        return True

    def _check(self, config: Config) -> None:
        """What a server started with ``config`` would refuse at its start, refused here,
        before this one stops (raises AggregatorError): what ``serve`` checks first, its
        store opened, its new address free."""
        from aggregator.pipeline import check_setup
        from aggregator.server import bind
        from aggregator.store import open_store

        check_setup(config)
        if config.store != self.running.store:
            with open_store(config.store):
                pass
        address = self.address(config)
        if address != self.address(self.running):
            bind(*address).close()  # PortInUse (an AggregatorError) if it is not free

    def request(self, listener: socket.socket) -> None:
        """Restart once the server has stopped: the listener is kept open (a descriptor
        of its own) for the new one."""
        if self.requested.is_set():
            return
        kept = os.dup(listener.fileno())
        os.set_inheritable(kept, True)
        self.listen_fd = kept
        log.warning("%s changed: restarting to apply it (connections wait meanwhile)", self.path)
        self.requested.set()

    def restart(self) -> NoReturn:
        """This process, started again with its own command line (call once the server
        and its workers have stopped). If the system refuses, one line says so and the
        process ends: the socket closes with it."""
        assert self.listen_fd is not None
        environment = {**os.environ, LISTEN_FD: str(self.listen_fd)}
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
