"""A local server on a raw socket for the network tests: its address, the connections it holds (closed with it), and
the wait for its reader to hang up."""
from __future__ import annotations

import socket
import threading
from typing import Callable


class RawServer:
    """Listens on a free local port; `url` names `path` on it. `reader_closed` is set once a reader hung up."""

    def __init__(self, path: str) -> None:
        self.held: list[socket.socket] = []
        self.connections = 0  # accepted by accept_each
        self.reader_closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def accept_each(self, serve: Callable[[socket.socket, int], None]) -> None:
        """Each connection served on a thread of its own, `serve(connection, its number from 1)`, until closed."""
        def accept() -> None:
            while True:
                try:
                    connection, _ = self.listener.accept()
                except OSError:  # closed
                    return
                self.connections += 1
                threading.Thread(target=serve, args=(connection, self.connections), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def hold(self, connection: socket.socket) -> socket.socket:
        """`connection` kept until close(), its request read."""
        self.held.append(connection)
        connection.recv(65536)  # the request
        return connection

    def await_hang_up(self, connection: socket.socket) -> None:
        """Silence until the reader closes its end (or the connection fails): then `reader_closed`."""
        try:
            if connection.recv(1) != b"":  # the reader said more: not a hang-up
                return
        except OSError:
            pass
        self.reader_closed.set()

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()
