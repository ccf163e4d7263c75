"""``--blackhole-port``: a port where a connect never completes.

A listening socket with the smallest backlog that is never accepted from,
its accept queue filled by connections of our own.  Linux then drops every
new SYN (``tcp_conn_request`` drops a SYN while the accept queue is full,
syncookies or not, unless ``net.ipv4.tcp_abort_on_overflow`` is set), the
client retransmits it, and its connect times out.  The socket is never
registered with the event loop: nothing here costs a task or a callback.
"""

from __future__ import annotations

import select
import socket

# More than the kernel keeps queued for a backlog of 0 (Linux: 1, BSD: 1);
# the filling stops at the first connect that does not complete.
MAX_FILLERS = 8
# How long one filling connect may take before the queue counts as full.
FILL_WAIT = 0.05


class Blackhole:
    """The listening socket and the connections that keep its queue full."""

    def __init__(self, host: str, port: int) -> None:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.fillers: list[socket.socket] = []
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(address)
            self.listener.listen(0)
            self.port = self.listener.getsockname()[1]
            self._fill(family, host)
        except BaseException:
            self.close()
            raise

    def _fill(self, family: int, host: str) -> None:
        # A wildcard address is reached on the loopback interface.
        target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        address = socket.getaddrinfo(target, self.port, family, socket.SOCK_STREAM)[0][4]
        for _ in range(MAX_FILLERS):
            filler = socket.socket(family, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(address)
            _, writable, _ = select.select([], [filler], [], FILL_WAIT)
            if writable and filler.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                self.fillers.append(filler)
                continue
            filler.close()  # its SYN was dropped: the queue is full
            break

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.fillers.clear()
        self.listener.close()
