"""A TCP proxy that can be cut: the network between the service and its database.

    with TcpProxy("127.0.0.1", 5432) as proxy:       # listens on 127.0.0.1:<proxy.port>
        url = proxy.rewrite(database_url)              # the same URL, through the proxy
        ...
        proxy.cut()        # every open connection is reset, new ones are refused
        proxy.restore()    # connections are accepted and forwarded again

Real sockets, one thread per direction per connection. While cut, the listening socket is
closed, so a new connection is refused at once (the database host is up but unreachable,
as when a switch port or the database's process goes away); open connections are closed
with a reset, so the service sees the error in the middle of whatever it was doing.
"""
from __future__ import annotations

import socket
import struct
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting: threading.Thread | None = None
        self.accepted = 0
        self.cuts = 0

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> "TcpProxy":
        self._listen()
        return self

    def stop(self) -> None:
        self._close_listener()
        self._reset_all()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def cut(self) -> None:
        """The link goes down: refuse new connections, reset the open ones."""
        self.cuts += 1
        self._close_listener()
        self._reset_all()

    def restore(self) -> None:
        """The link is back, on the same port."""
        if self._listener is None:
            self._listen()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def rewrite(self, url: str) -> str:
        """`url` (scheme://user@host:port/db?...) with host and port replaced by the proxy's."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = (auth + "@" if auth else "") + f"{self.host}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # -- internals -------------------------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accepting = threading.Thread(target=self._accept_loop, args=(sock,),
                                           name="proxy-accept", daemon=True)
        self._accepting.start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._accepting is not None:
            self._accepting.join(5)
            self._accepting = None

    def _reset_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _reset(conn)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return               # the listener was closed: cut or stopped
            if self._listener is not listener:
                _reset(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="proxy-pump",
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Drop a connection: SO_LINGER 0 (a reset where data is left unread), shut down (which
    also wakes the pump thread blocked reading it), close."""
    for call in (lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0)),
                 lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
        try:
            call()
        except OSError:
            pass
