"""Console-script entry points: a user's mistake ends in one ``lerobot-x: error: ...`` line, not a traceback.

Every error we raise for bad input already says what is wrong and how to fix it (unknown flags,
missing datasets, ports that do not answer, checkpoints that do not fit); the traceback under it only
buries that line. ``LEROBOT_TRACEBACK=1`` keeps the traceback for bug reports. Called with an
explicit ``argv`` (tests, Python callers) the wrapped ``main`` raises as usual.
"""

from __future__ import annotations

import functools
import os
import select
import sys
from collections.abc import Callable
from typing import Any

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # ConfigError, DatasetError, FeatureMismatchError, WeightsMismatchError, ...
    KeyError,
    OSError,  # missing / existing files, permissions, serial ports, connections and timeouts
    ImportError,  # an optional extra is not installed (the message names it)
)


def console_main(main: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> Any:
        if argv is not None:
            return main(argv)
        prog = os.path.basename(sys.argv[0]) or "lerobot"
        try:
            try:
                return main()
            finally:  # output to a pipe is still buffered: a reader that left shows here, not at exit
                sys.stdout.flush()
        except KeyboardInterrupt:
            print(f"{prog}: interrupted.", file=sys.stderr)
            return 130
        except USER_ERRORS as e:
            if isinstance(e, BrokenPipeError) and _stdout_reader_gone():
                # ``lerobot-train --help | head``: the reader has what it wanted; nothing went wrong.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
                return 0
            if os.environ.get("LEROBOT_TRACEBACK"):
                raise
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"{prog}: error: {message}", file=sys.stderr)
            print(f"{prog}: (LEROBOT_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
            return 1

    return wrapper


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe whose reader has closed it (not some other broken connection)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows) or no real stdout
        return False
