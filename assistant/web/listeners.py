"""A listening socket per worker on one port (SO_REUSEPORT), as nginx's `reuseport` does.

With one shared socket, the worker that wakes first accepts every connection waiting: 50 agents connecting
at once were split 47 / 3, and the busy worker's agents waited many times longer than the idle one's. With a
socket each, the kernel spreads new connections evenly over the workers."""

from __future__ import annotations

import socket

from assistant.errors import InputError

_IN_USE = "the address {host}:{port} is already in use (another `faq serve`?): choose another --port"


class PortInUse(InputError):
    """The port of `faq serve` is taken."""


class WorkerListener(socket.socket):
    """The supervisor's hold on the port, never listening itself. Handed to a worker process (pickled by
    uvicorn's supervisor), it becomes that worker's own socket on the same address."""

    def __reduce__(self):
        return (reuse_port_socket, (self.family, self.getsockname()))


def reuse_port_socket(family: int, address: tuple, kind: type[socket.socket] = socket.socket) -> socket.socket:
    sock = kind(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def worker_listener(host: str, port: int) -> WorkerListener:
    """Raises PortInUse when anything listens there already, a server of ours included."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    # A plain bind first: sharing the port is for our own workers, never with a server already running.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortInUse(_IN_USE.format(host=host, port=port)) from exc
    return reuse_port_socket(family, address, WorkerListener)
