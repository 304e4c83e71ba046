"""A listening socket on 127.0.0.1 with an accept thread and per-connection
threads that start and stop together: what the fake server and the relay
share.  Subclasses say what an accepted socket becomes and how to break
their live connections on stop."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar, Self

HOST = "127.0.0.1"


class LoopbackServer:
    """Use as a context manager; ``port`` is set by :meth:`start`."""

    #: Prefix of the thread names, for the error when threads hang.
    thread_name: ClassVar[str]

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        #: Exceptions met in the server's threads.
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- what subclasses provide ------------------------------------------
    def _accepted(self, sock: socket.socket) -> None:
        """Take over a newly accepted connection (in the accept thread)."""
        raise NotImplementedError

    def _break_connections(self) -> None:
        """Make every live connection's thread return (on stop)."""
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, 0))
            listener.listen(16)
            listener.settimeout(0.05)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._start_thread(self._recording(self._accept_loop), f"{self.thread_name}-accept")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Break every connection and join every thread."""
        self._stopping.set()
        # Once the accept loop is over no connection can be added.
        for thread in self._all_threads()[:1]:
            thread.join(timeout)
        self._break_connections()
        threads = self._all_threads()
        for thread in threads:
            thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"{self.thread_name} threads did not stop: {alive}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- threads ------------------------------------------------------------
    def _all_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _recording(self, target: Callable[[], None]) -> Callable[[], None]:
        """``target``, with what it raises kept in :attr:`errors` (an OSError
        while stopping is the socket being shut, not an error)."""

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                if not (self._stopping.is_set() and isinstance(exc, OSError)):
                    with self._lock:
                        self.errors.append(exc)

        return run

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._stopping.is_set():
                sock.close()
                return
            self._accepted(sock)
