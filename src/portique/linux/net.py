"""Network namespaces and interfaces without a netlink library: a socket made
inside another network namespace, and an interface brought up with the classic
SIOCGIFFLAGS/SIOCSIFFLAGS ioctls."""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from portique.linux.ns import CLONE_NEWNET, setns

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ_FLAGS = struct.Struct("16sH22x")  # struct ifreq: name, then ifr_flags


def socket_in_netns(
    netns_path: str | os.PathLike[str], family: int, kind: int, proto: int = 0
) -> socket.socket:
    """A socket created inside the network namespace at `netns_path` (a socket
    keeps the namespace it was born in). Only the calling thread enters that
    namespace, for the socket() call, and comes straight back; other threads
    are unaffected (setns(CLONE_NEWNET) acts on one thread).

    Inside a user namespace (a rootless engine) the way back is closed: the
    host's namespace belongs to the initial user namespace. There a thread of
    its own enters, makes the socket and ends where it is."""
    from portique.linux.ns import in_user_namespace

    if in_user_namespace():
        return _socket_from_thread(netns_path, family, kind, proto)
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                return socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
            finally:
                setns(home, CLONE_NEWNET)
        finally:
            os.close(home)
    finally:
        os.close(target)


def _socket_from_thread(
    netns_path: str | os.PathLike[str], family: int, kind: int, proto: int
) -> socket.socket:
    import threading

    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_make() -> None:
        try:
            target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target, CLONE_NEWNET)
            finally:
                os.close(target)
            made.append(socket.socket(family, kind | socket.SOCK_CLOEXEC, proto))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=enter_and_make, name="netns-socket")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


def link_up(sock: socket.socket, name: str) -> None:
    """Set IFF_UP on interface `name` of the namespace `sock` belongs to."""
    req = _IFREQ_FLAGS.pack(name.encode(), 0)
    flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, req))[1]
    if not flags & IFF_UP:
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name.encode(), flags | IFF_UP))
