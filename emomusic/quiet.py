"""Import third-party modules that talk on stdout.

pyfluidsynth prints where it found libfluidsynth on standard output when the environment
variable ``CI`` is set, at import time; pretty_midi imports pyfluidsynth when it is installed.
A line on stdout breaks ``--json`` output, and on stderr it would break the promise of a
one-line ``Error:``, so these imports go through :func:`quiet_import`, which drops what the
module prints while it is imported. The import is cached by Python, so this costs nothing
after the first call.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import threading

_LOCK = threading.Lock()


def quiet_import(name: str):
    """``importlib.import_module(name)`` with what the module prints while importing dropped."""
    if name in sys.modules:
        return sys.modules[name]
    with _LOCK, contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module(name)
