"""Warnings of the library, and the one place that turns them into lines on the terminal.

Library code says what a caller should know with ``warnings.warn(message, SpecrunWarning)``:
from Python it is an ordinary warning (filter it, turn it into an error in a test); the
``runner`` command shows each as one ``runner: warning: ...`` line on stderr (:func:`as_lines`).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO


class SpecrunWarning(UserWarning):
    """Something a run did without, or did otherwise than asked, that its caller should know
    (a model that could not be logged for use, a checkpoint that could not be uploaded)."""


@contextlib.contextmanager
def as_lines(prefix: str = "runner") -> Iterator[None]:
    """While inside: every ``SpecrunWarning`` is printed as ``<prefix>: warning: <message>``,
    each time it is raised; other warnings are shown as Python shows them."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", SpecrunWarning)
        shown_otherwise = warnings.showwarning

        def show(
            message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
        ) -> None:
            if issubclass(category, SpecrunWarning):
                print(f"{prefix}: warning: {message}", file=sys.stderr, flush=True)
            else:
                shown_otherwise(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def warn(message: str, stacklevel: int = 2) -> None:
    """``warnings.warn(message, SpecrunWarning)``, attributed to the caller's caller."""
    warnings.warn(message, SpecrunWarning, stacklevel=stacklevel + 1)
