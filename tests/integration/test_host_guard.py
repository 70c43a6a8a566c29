"""The host guard, live: a test that leaves a mount behind fails, by name.

(tests/unit/test_host_guard.py covers each kind of change on a stand-in
/dev, /etc and mount table; this runs the real fixture in a pytest of its
own, so the failure it provokes is not this suite's.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

INNER_CONFTEST = """
from support.host_guard import host_guard
"""
INNER_TESTS = """
import subprocess

def test_leaves_a_mount(tmp_path):
    (tmp_path / "m").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tmp_path / "m")], check=True)

def test_clean(tmp_path):
    (tmp_path / "f").write_text("fine")
"""


def test_guard_fails_the_test_that_left_a_mount(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(INNER_CONFTEST)
    (suite / "test_inner.py").write_text(INNER_TESTS)
    base = tmp_path / "base"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(suite),
             "--basetemp", str(base), "-o", f"pythonpath={TESTS}", str(suite)],
            capture_output=True, text=True, timeout=120, cwd=suite,
        )  # fmt: skip
    finally:
        with open("/proc/self/mountinfo") as f:
            leftovers = [line.split()[4] for line in f if str(base) in line.split()[4]]
        for point in leftovers:
            subprocess.run(["umount", "-l", point], check=False)
    assert leftovers, proc.stdout  # the inner test did leave its mount
    assert "2 passed, 1 error" in proc.stdout, proc.stdout  # the error: its teardown
    assert "ERROR at teardown of test_leaves_a_mount" in proc.stdout
    assert "the test changed the host: left mounted: " in proc.stdout
    assert f"{base}/test_leaves_a_mount0/m (tmpfs tmpfs" in proc.stdout
