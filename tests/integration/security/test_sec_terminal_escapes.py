"""What an image says must not drive the terminal of whoever lists containers.

An image's Cmd is the image author's text, printed by `ps` to the user's
terminal: escape sequences in it retitle the window, clear the screen, move
the cursor over other rows (or, on some terminals, set the clipboard). Docker
prints the command through strconv.Quote, so control characters show as
`\\x1b`; so must we, truncated or not.
"""

from __future__ import annotations

import os
from pathlib import Path

from support.sec_engine import engine, image_tar

CMD = '["sh","-c","echo \\u001b]0;PWNED\\u0007\\u001b[2J\\u001b[1A\\r"]'


def test_ps_quotes_control_characters_of_an_image_cmd(tmp_path: Path) -> None:
    with engine(tmp_path, f"pq-sec-esc-{os.getpid()}") as pq:
        pq.ok("import", "--change", f"CMD {CMD}", str(image_tar(tmp_path / "img")), "esc:latest")
        pq.ok("create", "--name", "esc", "esc")
        for args in (
            ("ps", "-a"),
            ("ps", "-a", "--no-trunc"),
            ("ps", "-a", "--format", "{{.Command}}"),
        ):
            out = pq.ok(*args)
            for ch in ("\x1b", "\x07", "\r"):
                assert ch not in out, f"`portique {' '.join(args)}` printed {ch!r}: {out!r}"
            assert "\\x1b" in out, out
        assert pq.ok("ps", "-a", "--no-trunc", "--format", "{{.Command}}").strip() == (
            '"sh -c echo \\x1b]0;PWNED\\a\\x1b[2J\\x1b[1A\\r"'
        )
