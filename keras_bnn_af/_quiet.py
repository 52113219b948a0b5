"""What `keras-bnn-af` hides unless `--verbose`: TensorFlow's logs and chatter.

TensorFlow logs from C++ (oneDNN, CPU features, the SavedModel reader, MLIR)
at import and at every conversion, from Python through the `tensorflow` and
`absl` loggers, and as `UserWarning`s. `quieted()`, which the CLI wraps around
each command, hides

- C++ INFO and WARNING lines: `TF_CPP_MIN_LOG_LEVEL=2` (errors still show),
  set before TensorFlow is imported, unless the user set the variable: then
  the user's level applies;
- what prints to file descriptor 2 from C++ regardless of that level (the
  float32 converter's "Summary on the non-converted ops", TFLite's "Created
  TensorFlow Lite XNNPACK delegate"), captured around those calls only
  (`native_output_captured`) and shown again if the call fails; not when the
  user asked for C++ INFO lines with `TF_CPP_MIN_LOG_LEVEL=0`;
- Python log records below ERROR from the `tensorflow` and `absl` loggers;
- `UserWarning`s raised inside TensorFlow and Keras, and Keras's note that
  `.h5` is a legacy format.

keras-bnn-af's own warnings (float convs left by LCE, unfolded thresholds)
still show. Everything is restored when the block ends.
"""

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

__all__ = ["CPP_LOG_LEVEL", "native_output_captured", "quieted"]

#: TF_CPP_MIN_LOG_LEVEL while quiet: 2 hides INFO and WARNING, keeps ERROR.
CPP_LOG_LEVEL = "2"
_ENV = "TF_CPP_MIN_LOG_LEVEL"
_LOGGERS = ("tensorflow", "absl")
#: Modules whose own UserWarnings are hidden (regular expression).
_NOISY_MODULES = r"(tensorflow|keras|tf_keras)(\.|$)"
#: Messages hidden wherever the warning is attributed (Keras warns at the caller).
_NOISY_MESSAGES = (r".*HDF5 file.*legacy",)

_capture_native = False


@contextlib.contextmanager
def quieted(enabled: bool = True) -> Iterator[None]:
    """Hides TensorFlow's logs and noisy warnings inside the block (see above)."""
    global _capture_native
    if not enabled:
        yield
        return
    user_level = os.environ.get(_ENV)
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    capture = _capture_native
    try:
        if user_level is None:
            os.environ[_ENV] = CPP_LOG_LEVEL
        _capture_native = (user_level or CPP_LOG_LEVEL).strip() not in ("", "0")
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", category=UserWarning, module=_NOISY_MODULES
            )
            for message in _NOISY_MESSAGES:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        _capture_native = capture
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if user_level is None:
            os.environ.pop(_ENV, None)


@contextlib.contextmanager
def native_output_captured() -> Iterator[None]:
    """Captures file descriptor 2 inside `quieted()`; elsewhere does nothing.

    For calls whose C++ code prints to stderr whatever the log level. The
    captured text is dropped if the block succeeds and written to stderr if it
    raises, so a failure keeps its diagnostics.
    """
    if not _capture_native:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
                sys.stderr.flush()
