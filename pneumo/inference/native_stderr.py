"""TensorFlow's native start-up lines (absl, oneDNN, CPU features) go straight to file
descriptor 2 and ignore TF_CPP_MIN_LOG_LEVEL. The CLI promises one line on stderr for a bad
input, so the native chatter is silenced while TensorFlow loads and builds the model."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Send fd 2 to /dev/null for the duration (Python's own sys.stderr is flushed first)."""
    if os.environ.get("PNEUMO_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):          # no fd 2 (closed by the caller): nothing to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
