"""Console-script entry points: a user's mistake ends in one ``lerobot-x: error: ...`` line, not a traceback.

Every error we raise for bad input already says what is wrong and how to fix it (unknown flags,
missing datasets, ports that do not answer, checkpoints that do not fit); the traceback under it only
buries that line. ``LEROBOT_TRACEBACK=1`` keeps the traceback for bug reports. Called with an
explicit ``argv`` (tests, Python callers) the wrapped ``main`` raises as usual.
"""

from __future__ import annotations

import functools
import os
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
            return main()
        except KeyboardInterrupt:
            print(f"{prog}: interrupted.", file=sys.stderr)
            return 130
        except USER_ERRORS as e:
            if os.environ.get("LEROBOT_TRACEBACK"):
                raise
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"{prog}: error: {message}", file=sys.stderr)
            print(f"{prog}: (LEROBOT_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
            return 1

    return wrapper
