"""Progress reporting and cooperative cancellation shared by the GUI worker and the CLI.

The engine calls ``reporter.stage(name, done, total)`` between stages/tiles and
``reporter.check()`` wherever it is safe to stop; ``check`` raises :class:`Cancelled`
when the caller asked to stop. A cancelled run never returns a partial image.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional


class Cancelled(Exception):
    """Raised inside the engine when the caller cancelled the run."""


class CancelToken:
    """Thread-safe flag: the GUI thread calls :meth:`cancel`, the worker polls it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by user")


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: ``stage`` label, ``done`` of ``total`` steps, seconds since start."""

    stage: str
    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[ProgressEvent], None]


class Reporter:
    """Wraps an optional callback and an optional cancel token."""

    def __init__(self, callback: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        self.callback = callback
        self.cancel = cancel
        self._t0 = time.perf_counter()

    def stage(self, name: str, done: int = 0, total: int = 1) -> None:
        self.check()
        if self.callback is not None:
            self.callback(ProgressEvent(name, done, total, time.perf_counter() - self._t0))

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check()


def as_reporter(progress: "Optional[ProgressCallback | Reporter]" = None,
                cancel: Optional[CancelToken] = None) -> Reporter:
    if isinstance(progress, Reporter):
        if cancel is not None and progress.cancel is None:
            progress.cancel = cancel
        return progress
    return Reporter(progress, cancel)
