"""A program on the slave side of a fresh pseudo-terminal (python's pty);
the test holds the master, types and reads as a user at a terminal would.

The program is started by subprocess (no os.fork in the test process, which
may run threads: gRPC's, the registry's token issuer), in a session of its
own, with the slave as its stdin, stdout and stderr: what `docker -it` and
`podman -it` look at (isatty, raw mode, the window size)."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import time


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        fd, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
            )
        except BaseException:
            os.close(fd)
            raise
        finally:
            os.close(slave)
        self.proc, self.fd = proc, fd
        self.buf = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _read(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False at end of output."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: every slave fd is closed
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def expect(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-800:]!r}")
            if not self._read(left):
                raise AssertionError(f"end of output before {needle!r}; got {self.buf[-800:]!r}")

    def wait(self, timeout: float = 60.0) -> int:
        """Read to the end and return the exit status (a signal as 128+n)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"still running after {timeout:.0f} s: {self.buf[-800:]!r}")
            self._read(0.1)
        # What it wrote last, up to the end of output (EIO once the slave is
        # closed everywhere), within a bound if something else still holds it.
        drained = time.monotonic() + 5
        while self._read(0.05) and time.monotonic() < drained:
            pass
        self.close()
        code = self.proc.returncode
        return code if code >= 0 else 128 - code

    def close(self) -> None:
        """Kill the program if it still runs (a failed test's clean-up)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
