"""Running fills off the GUI thread.

:class:`FillWorker` (a QObject moved to a QThread) runs one job: a single fill or a comparison
(several :class:`RunSettings` on the same input). Each run goes through the engine's run
service (:mod:`inpaint_gui.engine.service`) with a progress callback and a
:class:`CancelToken`; cancellation is cooperative only (the engine checks the token between
stages/tiles; ``QThread.terminate()`` is never used). A cancelled job emits ``cancelled`` and
no result. Errors never escape: they become ``failed(message, kind)``.

The service's notes (a broken weight file skipped; out of memory retried with smaller tiles,
downscaled, then on the CPU) are emitted through ``notice`` and kept in the result's
``notes``. Loaded models live in the shared, memory-bounded model cache.

:class:`FillRunner` is what the main window uses: it owns the threads, starts jobs, forwards
the signals of the current job only (a newer job supersedes and cancels an older one) and
shuts down cleanly.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from inpaint_gui.engine import devices, model_cache
from inpaint_gui.engine.progress import CancelToken, Cancelled, ProgressEvent
from inpaint_gui.engine.service import OutOfMemoryError, RunService
from inpaint_gui.engine.settings import RunSettings

log = logging.getLogger(__name__)

# failed(message, kind) kinds
MISSING_WEIGHTS = "missing_weights"
BAD_WEIGHTS = "bad_weights"
UNKNOWN_MODEL = "unknown_model"
INVALID_INPUT = "invalid_input"
OUT_OF_MEMORY = "out_of_memory"
UNAVAILABLE = "unavailable"
ERROR = "error"


def cancel_note(spec) -> str:
    """What the UI says when a run of ``spec`` (a ModelSpec or None) is cancelled."""
    if spec is not None and not getattr(spec, "interruptible", True):
        return (f"stopping: {spec.title} works in one native call that cannot be interrupted; "
                "the app stays usable and the result is discarded when the call ends")
    return "stopping\u2026"


@dataclass
class FillResult:
    """One model's output. ``array`` is None when this model failed inside a comparison."""

    model: str
    weights: str  # label for captions: "default", a weight-set name or a file name
    array: Optional[np.ndarray]
    seconds: float
    settings: Optional[RunSettings] = None
    reason: str = ""  # the Auto choice's explanation when settings.model was "auto"
    notes: tuple = ()  # what the worker did on the way (out-of-memory retries, ...)
    margins: tuple = (0, 0, 0, 0)
    error: str = ""
    error_kind: str = ""

    @property
    def ok(self) -> bool:
        return self.array is not None

    @property
    def label(self) -> str:
        return f"{self.model} · {self.weights} · {self.seconds:.1f} s"


@dataclass
class FillJob:
    image: np.ndarray
    mask: Optional[np.ndarray]
    runs: Sequence[RunSettings]
    margins: tuple = (0, 0, 0, 0)
    compare: bool = False
    job_id: int = 0


def classify_error(exc: BaseException) -> "tuple[str, str]":
    """(user message, kind) for an exception raised by the engine."""
    from inpaint_gui.engine import weights as W
    from inpaint_gui.engine.registry import ModelUnavailableError, UnknownModelError
    if isinstance(exc, ModelUnavailableError):
        return str(exc), UNAVAILABLE
    if isinstance(exc, W.MissingWeightsError):
        return f"{exc}; import it in the model manager, or use a classical fill", MISSING_WEIGHTS
    if isinstance(exc, W.WeightsError):
        return str(exc), BAD_WEIGHTS
    if isinstance(exc, UnknownModelError):
        return str(exc), UNKNOWN_MODEL
    if isinstance(exc, OutOfMemoryError):
        return str(exc), OUT_OF_MEMORY
    if devices.is_out_of_memory(exc):
        return f"out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", OUT_OF_MEMORY
    if isinstance(exc, ValueError):
        return str(exc), INVALID_INPUT
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__, ERROR


class FillWorker(QObject):
    """Runs one :class:`FillJob`; move it to a QThread and connect ``thread.started`` to :meth:`run`.

    Signals:
      progress(stage: str, fraction: float, elapsed: float) - fraction over the whole job.
      notice(text: str)            - something the user should know (auto choice, OOM retry).
      finished(result: FillResult) - single run done.
      result_ready(result)         - one model of a comparison done (ok or failed).
      compare_finished(results: list[FillResult]) - comparison done (failed models have
                                     ``array`` None and ``error``/``error_kind`` set).
      failed(message: str, kind: str) - single run failed (or every model of a comparison);
                                     kinds: missing_weights, bad_weights, unknown_model,
                                     unavailable, invalid_input, out_of_memory, error.
      cancelled()                  - cancelled; nothing else is emitted for the job.
      done()                       - always last (for thread clean-up).
    """

    progress = Signal(str, float, float)
    notice = Signal(str)
    finished = Signal(object)
    result_ready = Signal(object)
    compare_finished = Signal(list)
    failed = Signal(str, str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, job: FillJob, service: Optional[RunService] = None,
                 auto_available: Optional[set] = None, parent=None) -> None:
        super().__init__(parent)
        self.job = job
        self.token = CancelToken()
        self._service = service if service is not None else RunService()
        self._auto_available = auto_available
        self._t0 = 0.0
        # the ModelSpec being run (read by the GUI thread for the cancel note)
        self.active_spec = None

    # called from the GUI thread: only sets a thread-safe flag
    def cancel(self) -> None:
        self.token.cancel()

    @property
    def is_cancelled(self) -> bool:
        return self.token.cancelled

    @Slot()
    def run(self) -> None:
        self._t0 = time.perf_counter()
        try:
            self._run_job()
        except Exception:  # pragma: no cover - last line of defence, never crash the app
            log.exception("fill job crashed")
            if not self.token.cancelled:
                self.failed.emit("internal error (see the log)", ERROR)
            else:
                self.cancelled.emit()
        finally:
            app = QCoreApplication.instance()
            if app is not None and self.thread() is not app.thread():
                self.moveToThread(app.thread())  # so Python may delete it from the GUI thread
            self.done.emit()

    # ------------------------------------------------------------------ job
    def _run_job(self) -> None:
        job = self.job
        runs = list(job.runs)
        if not runs:
            self.failed.emit("nothing to run", INVALID_INPUT)
            return
        results = []
        for i, settings in enumerate(runs):
            if self.token.cancelled:
                self.cancelled.emit()
                return
            try:
                res = self._run_one(settings, i, len(runs))
            except Cancelled:
                self.cancelled.emit()
                return
            except Exception as exc:  # noqa: BLE001 - every error becomes a message
                msg, kind = classify_error(exc)
                if kind == ERROR:
                    log.exception("fill failed")
                if self.token.cancelled:
                    self.cancelled.emit()
                    return
                if not job.compare:
                    self.failed.emit(msg, kind)
                    return
                res = FillResult(model=settings.model, weights=settings.weights_label(), array=None,
                                 seconds=0.0, settings=settings, margins=tuple(job.margins),
                                 error=msg, error_kind=kind)
            if self.token.cancelled:  # cancelled while the last stage finished: no result
                self.cancelled.emit()
                return
            if job.compare:
                self.result_ready.emit(res)
            results.append(res)
        if not job.compare:
            self.finished.emit(results[0])
            return
        if not any(r.ok for r in results):
            kinds = {r.error_kind for r in results}
            kind = kinds.pop() if len(kinds) == 1 else ERROR
            self.failed.emit("; ".join(f"{r.model}: {r.error}" for r in results), kind)
            return
        self.compare_finished.emit(results)

    def _progress_cb(self, index: int, count: int, prefix: str):
        def cb(ev: ProgressEvent) -> None:
            frac = (index + ev.fraction) / max(1, count)
            stage = f"{prefix}: {ev.stage}" if prefix else ev.stage
            self.progress.emit(stage, float(frac), time.perf_counter() - self._t0)
        return cb

    def _run_one(self, settings: RunSettings, index: int, count: int) -> FillResult:
        job = self.job
        plan = self._service.prepare(settings.request(job.image, job.mask, job.margins),
                                     available=self._auto_available)
        if plan.reason:
            self.notice.emit(f"Auto: {plan.model} ({plan.reason})")
            settings = settings.with_model(plan.model, None)
        self.active_spec = plan.spec
        cb = self._progress_cb(index, count, plan.title if count > 1 else "")
        res = self._service.execute(plan, progress=cb, cancel=self.token, notice=self.notice.emit)
        return FillResult(model=plan.model, weights=settings.weights_label(),
                          array=np.asarray(res.image), seconds=res.seconds, settings=settings,
                          reason=plan.reason, notes=res.notes, margins=tuple(job.margins))


class FillRunner(QObject):
    """Owns the worker threads; the main window talks to this.

    ``run(image, mask, settings)`` / ``compare(image, mask, [settings, ...])`` start a job
    (copies of the arrays are taken) and return its id; a job started while another runs
    cancels the older one, whose signals are then ignored. Signals are those of
    :class:`FillWorker` for the current job, plus ``running_changed(bool)`` and
    ``cancelling(str)``.
    Call :meth:`shutdown` from the window's ``closeEvent``.
    """

    progress = Signal(str, float, float)
    notice = Signal(str)
    finished = Signal(object)
    result_ready = Signal(object)
    compare_finished = Signal(list)
    failed = Signal(str, str)
    cancelled = Signal()
    running_changed = Signal(bool)
    cancelling = Signal(str)  # a cancel was asked: what the UI should say until ``cancelled``

    def __init__(self, parent=None, cache: Optional[model_cache.ModelCache] = None,
                 auto_available: Optional[set] = None, warm_up: bool = True) -> None:
        super().__init__(parent)
        if warm_up:
            # Import torch and the registry here, in the GUI thread at start-up: importing
            # torch inside the first worker run would hold the GIL and freeze the GUI for a
            # moment (the pipeline asks torch which devices exist).
            try:
                devices.available_devices()
                from inpaint_gui.engine import registry
                registry.list_models()
            except Exception:  # pragma: no cover - the run will report the real error
                log.exception("warm-up failed")
        self.service = RunService(cache)
        self.auto_available = auto_available
        self._threads: "dict[FillWorker, QThread]" = {}
        self._current: Optional[FillWorker] = None
        self._next_id = 1

    # ------------------------------------------------------------------ control
    def run(self, image: np.ndarray, mask: Optional[np.ndarray], settings: RunSettings,
            margins: Sequence[int] = (0, 0, 0, 0)) -> int:
        return self._start(FillJob(image, mask, [settings], tuple(margins), compare=False))

    def compare(self, image: np.ndarray, mask: Optional[np.ndarray],
                settings: Sequence[RunSettings], margins: Sequence[int] = (0, 0, 0, 0)) -> int:
        return self._start(FillJob(image, mask, list(settings), tuple(margins), compare=True))

    def cancel(self) -> None:
        """Ask the current job to stop (it emits ``cancelled`` when it has). ``cancelling``
        says what happens meanwhile: a model that runs as one native call (PatchMatch) only
        stops when that call returns, and its result is then dropped."""
        if self._current is not None:
            worker = self._current
            worker.cancel()
            self.cancelling.emit(cancel_note(worker.active_spec))

    def is_running(self) -> bool:
        return self._current is not None

    @property
    def current_job_id(self) -> int:
        return self._current.job.job_id if self._current is not None else 0

    def wait(self, msecs: int = -1) -> bool:
        """Block until every worker thread has finished (tests, shutdown)."""
        deadline = None if msecs < 0 else time.monotonic() + msecs / 1000
        for thread in list(self._threads.values()):
            left = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not (thread.wait() if left < 0 else thread.wait(left)):
                return False
        return True

    def shutdown(self, msecs: int = 5000) -> bool:
        """Cancel everything and wait for the threads (from ``closeEvent``)."""
        for w in list(self._threads):
            w.cancel()
        ok = self.wait(msecs)
        if ok:
            self._threads.clear()
        self._current = None
        return ok

    # ------------------------------------------------------------------ internals
    def _start(self, job: FillJob) -> int:
        job.image = np.array(job.image, copy=True)
        job.mask = None if job.mask is None else np.array(job.mask, copy=True)
        job.job_id = self._next_id
        self._next_id += 1
        if self._current is not None:
            self._current.cancel()
        worker = FillWorker(job, service=self.service, auto_available=self.auto_available)
        thread = QThread()
        thread.setObjectName(f"fill-{job.job_id}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.notice.connect(self._on_notice)
        worker.finished.connect(self._on_finished)
        worker.result_ready.connect(self._on_result_ready)
        worker.compare_finished.connect(self._on_compare_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        # direct: quit() is thread-safe and must not wait for the GUI loop (shutdown blocks it)
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        self._threads[worker] = thread
        was_running = self._current is not None
        self._current = worker
        thread.start()
        if not was_running:
            self.running_changed.emit(True)
        return job.job_id

    def _is_current(self) -> bool:
        return self.sender() is self._current and self._current is not None

    @Slot(str, float, float)
    def _on_progress(self, stage: str, fraction: float, elapsed: float) -> None:
        if self._is_current():
            self.progress.emit(stage, fraction, elapsed)

    @Slot(str)
    def _on_notice(self, text: str) -> None:
        if self._is_current():
            self.notice.emit(text)

    @Slot(object)
    def _on_result_ready(self, res) -> None:
        if self._is_current():
            self.result_ready.emit(res)

    def _end(self) -> None:
        self._current = None
        self.running_changed.emit(False)

    @Slot(object)
    def _on_finished(self, res) -> None:
        if self._is_current():
            self._end()
            self.finished.emit(res)

    @Slot(list)
    def _on_compare_finished(self, results) -> None:
        if self._is_current():
            self._end()
            self.compare_finished.emit(results)

    @Slot(str, str)
    def _on_failed(self, message: str, kind: str) -> None:
        if self._is_current():
            self._end()
            self.failed.emit(message, kind)

    @Slot()
    def _on_cancelled(self) -> None:
        if self._is_current():
            self._end()
            self.cancelled.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        for w, t in list(self._threads.items()):
            if t is thread:
                t.wait()
                del self._threads[w]
                if w is self._current:  # ended without a final signal (should not happen)
                    self._end()
