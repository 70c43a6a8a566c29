"""The terminal and write helpers both faces use (portique/termio.py)."""

from __future__ import annotations

import os
import termios
import threading

from portique.termio import raw_terminal, set_window_size, window_size, write_all


def test_write_all_waits_on_a_full_nonblocking_pipe() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    data = os.urandom(1 << 20)  # far more than a pipe holds
    got = bytearray()

    def drain() -> None:
        while chunk := os.read(r, 65536):
            got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        write_all(w, data)
    finally:
        os.close(w)
        reader.join()
        os.close(r)
    assert bytes(got) == data


def test_raw_terminal_sets_and_restores_modes() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO
        with raw_terminal(slave):
            during = termios.tcgetattr(slave)
            assert not during[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_raw_terminal_leaves_other_fds_alone() -> None:
    r, w = os.pipe()
    try:
        with raw_terminal(r):
            pass
        with raw_terminal(-1):
            pass
    finally:
        os.close(r)
        os.close(w)


def test_window_size_round_trip() -> None:
    master, slave = os.openpty()
    try:
        set_window_size(master, 33, 101)
        assert window_size(slave) == (33, 101)
        r, w = os.pipe()
        assert window_size(r) is None
        os.close(r)
        os.close(w)
    finally:
        os.close(master)
        os.close(slave)
