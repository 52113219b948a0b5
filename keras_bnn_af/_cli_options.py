"""Argument types and checks shared by the `keras-bnn-af` subcommands."""

import argparse
from pathlib import Path

from keras_bnn_af._files import check_output_file

__all__ = ["check_new_output_file", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}; pass 1 or more"
        )
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, got {text!r}; pass e.g. 0.001"
        )
    return value


def check_new_output_file(path: Path | None, option: str, *, overwrite: bool) -> None:
    """Refuses, before any work, a file `option` cannot write or must not replace."""
    if path is None:
        return
    check_output_file(path, option)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already exists; expected {option} to name a new file. "
            f"Pass another {option} file, or --overwrite to replace it."
        )
