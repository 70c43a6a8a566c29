"""Signal names as runc's `kill` accepts them: KILL, SIGKILL, sigkill, 9."""

from __future__ import annotations

from portique.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The numbers without signal's enum wrappers: containerd's shim and dockerd
    # send numbers; only a name needs signal.Signals (imported then).
    import _signal as signal


def parse_signal(text: str) -> int:
    """A signal number from a name (with or without SIG) or a number."""
    raw = text.strip()
    if raw.isdigit():
        num = int(raw)
        if not 0 < num < signal.NSIG:
            raise InvalidArgument(f"unknown signal {text!r}")
        return num
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    # Real-time signals: SIGRTMIN+N, SIGRTMAX-N.
    for base, sign in (("SIGRTMIN+", 1), ("SIGRTMAX-", -1)):
        if name.startswith(base) and name[len(base) :].isdigit():
            anchor = signal.SIGRTMIN if sign > 0 else signal.SIGRTMAX
            num = int(anchor) + sign * int(name[len(base) :])
            if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
                return num
            raise InvalidArgument(f"unknown signal {text!r}")
    import signal as names

    try:
        sig = names.Signals[name]
    except KeyError:
        raise InvalidArgument(f"unknown signal {text!r}") from None
    return int(sig)
