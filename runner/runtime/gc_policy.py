"""Keep Python's cyclic garbage collector off the long-lived heap of a ``runner`` process.

A ``runner run`` process imports torch, scikit-learn, pydantic, torchmetrics and more: some
700,000 objects that live until the process ends. While they pile up, the collector walks
all of them again and again: seven full collections of 45-340 ms each in a digits run on a
2-core machine, 1.5 s of CPU, which found a few thousand garbage objects. So the commands
that train (``runner run``, ``search``, ``reproduce``) start with the collector off
(:func:`start_up`), and the first loop of the process (:func:`settle`) moves everything
alive out of the collector's sight for good (``gc.freeze``) and switches it on for what the
loops allocate. Called from Python, where the collector is on, ``settle`` does nothing.
"""

from __future__ import annotations

import gc


def start_up() -> None:
    """Collector off until the first loop (a training command's first step)."""
    gc.disable()


def settle() -> None:
    """Before a loop: after a start-up with the collector off, freeze what is alive (the
    start-up's few thousand garbage objects too: a few MB, kept) and switch it on."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
