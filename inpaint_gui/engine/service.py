"""The one road from a request to a result, for every front end: the GUI's fill worker,
``inpaint run|batch|eval`` and the bench.

A :class:`RunRequest` says what to fill (image, mask or margins) and how (model or "auto",
weights, strategy, seams, device, precision, loader options). :meth:`RunService.prepare`
checks the input, makes the Auto choice (with its reason), checks the model and resolves its
weights; :meth:`RunService.execute` loads the model from the shared, memory-bounded model
cache (a broken weight file is skipped for the next usable one) and runs it, inpainting
through :func:`.pipeline.fill` and outpainting through :func:`.outpaint.extend`. Running out
of memory follows one plan (:func:`oom_plan`: smaller tiles, then downscaled, then the CPU);
each retry drops the device's cached models and is reported through ``progress`` and
``notice`` and kept in :attr:`RunResult.notes`. Cancel is a :class:`~.progress.CancelToken`.

``inpaint()``, ``outpaint()`` and ``load_model()`` are the same road for library callers.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from . import devices
from . import weights as W
from .model_cache import ModelCache, shared_cache
from .models.base import InpaintModel
from .outpaint import WEIGHT_FREE_OUTPAINT, check_margins, extend, split_options
from .pipeline import STRATEGIES, HDStrategy, check_inputs, fill
from .progress import CancelToken, Cancelled, ProgressCallback, as_reporter
from .registry import (ModelSpec, ModelUnavailableError, get_adapter, get_spec, short_title,
                       unavailable_reason)

AUTO = "auto"

Notice = Callable[[str], None]


class OutOfMemoryError(RuntimeError):
    """Every step of the out-of-memory plan ran out of memory (the message says which)."""


class RunWarning(UserWarning):
    """A retry after running out of memory, when no ``notice`` callback was given."""


@dataclass(frozen=True)
class RunRequest:
    """One fill, from any front end.

    image: RGB uint8/uint16 HxWx3 (outpainting also takes HxW, HxWx4 and float [0,1]).
    mask: uint8 HxW, 255 = fill, 0 = keep (inpainting; ignored when outpainting).
    margins: (top, left, bottom, right) px; any > 0 outpaints (extends the canvas).
    model: a registry name, "auto", or when outpainting a built-in method
        (:data:`.outpaint.WEIGHT_FREE_OUTPAINT`).
    weights: None (best usable installed set), a weight-set tag ``"<model>:<set>"``
        (``"aot:places2"``), a file path, or a state dict.
    strategy: :class:`HDStrategy`, its name, or None (the model's default); with
        ``model_strategy`` its name is replaced by the model's default (limits kept).
    blend: seam treatment ("none", "feather", "poisson", "color" or a ``BlendSettings``).
    device: "auto" | "cpu" | "cuda" | "mps"; precision: "fp32" | "fp16" | "bf16".
    model_options: loader options (and, when outpainting, :data:`.outpaint.EXTEND_OPTIONS`).
    outpaint_fallback: what "auto" outpaints with when SRN cannot run (default: Telea on the
        new margin, Auto's choice). quantize: outpainting's uint8 rounding ("truncate"|"round").
    """

    image: np.ndarray
    mask: Optional[np.ndarray] = None
    margins: Sequence[int] = (0, 0, 0, 0)
    model: str = AUTO
    weights: object = None
    strategy: "HDStrategy | str | None" = None
    model_strategy: bool = False
    blend: object = None
    device: str = "auto"
    precision: str = "fp32"
    model_options: Mapping = field(default_factory=dict)
    outpaint_fallback: Optional[str] = None
    quantize: Optional[str] = None


@dataclass(frozen=True)
class RunPlan:
    """A checked request: the model to run (after Auto) and how."""

    request: RunRequest
    model: str            # registry name, or a built-in outpainting method
    spec: Optional[ModelSpec]  # None for a built-in outpainting method
    reason: str           # the Auto choice's explanation ("" when the model was named)
    weights: object       # what the loader gets: None, a path or a state dict
    strategy: HDStrategy
    device: str           # resolved ("auto" picked)
    margins: tuple
    loader_options: dict
    extend_options: dict

    @property
    def outpainting(self) -> bool:
        return any(self.margins)

    @property
    def title(self) -> str:
        return self.spec.title if self.spec is not None else self.model


@dataclass(frozen=True)
class RunResult:
    """``image``: the result (the request's dtype; inpainting: its shape, byte-identical where
    mask == 0; outpainting: the extended canvas). ``notes``: what happened on the way (a broken
    weight file skipped, out-of-memory retries), in order."""

    image: np.ndarray
    model: str
    reason: str = ""
    notes: tuple = ()
    seconds: float = 0.0


def oom_plan(strategy: HDStrategy, native_size: int, device: str) -> "list[tuple[str, HDStrategy, str]]":
    """The retries after running out of memory: ``[(device, strategy, what it says), ...]``:
    tiles of half the model's comfortable size, then the whole image downscaled, then the CPU."""
    plan = []
    tile0 = strategy.tile_size or 2 * native_size
    tile = max(128, tile0 // 2)
    if strategy.name != "tile" or tile < tile0:
        t = replace(strategy, name="tile", tile_size=tile,
                    tile_overlap=min(strategy.tile_overlap, tile // 4))
        plan.append((device, t, f"retrying with {tile} px tiles"))
    limit = max(256, min(strategy.resize_limit, 1024) // 2)
    plan.append((device, replace(strategy, name="resize", resize_limit=limit),
                 f"retrying downscaled to {limit} px"))
    if device.split(":")[0] != "cpu":
        plan.append(("cpu", strategy, "retrying on the CPU"))
    return plan


def check_model(model: str, weights=None) -> Optional[ModelSpec]:
    """The spec of ``model`` (None for "auto") after the checks a run makes before any work:
    the model is registered and can run here; ``weights`` (a tag ``"<model>:<set>"`` or a
    path) is a readable checkpoint, and without ``weights`` an installed set is usable.
    Raises ``UnknownModelError``, ``ModelUnavailableError`` or a ``weights.WeightsError``
    whose message names the files."""
    return _checked(model, weights)[0]


def _checked(model: str, weights) -> "tuple[Optional[ModelSpec], object]":
    """(spec, the weights its loader gets) for :func:`check_model`."""
    if model.strip().lower() == AUTO:
        if weights is not None:
            raise ValueError("weights need a specific model, not auto")
        return None, None
    spec = get_spec(model.strip())
    why = unavailable_reason(spec)
    if why:
        raise ModelUnavailableError(f"{spec.title} is unavailable on this installation: {why}")
    if not spec.needs_weights:
        return spec, None
    if weights is None:
        status, _ws, _path = W.weight_status(spec)
        if status in ("missing", "broken"):
            raise W.no_usable_weights_error(spec, W.weight_files(spec))
        return spec, None
    weights = W.resolve_weights_ref(spec, weights)
    if isinstance(weights, Path):
        _check_weight_path(spec, weights)
    return spec, weights


def _check_weight_path(spec: ModelSpec, path: Path) -> None:
    if get_adapter(spec).converts_tensorflow and (
            path.suffix == ".index" or path.is_dir() or Path(f"{path}.index").is_file()):
        return  # a TensorFlow checkpoint is its loader's business
    if not path.is_file():
        raise W.MissingWeightsError(f"weight file not found: {path}")
    problem = W.check_weight_file(path, tolerant=W.tolerant_reader(spec))
    if problem:
        raise W.CheckpointFormatError(f"{path.name}: {problem}")


def _check_image(image) -> None:
    """Outpainting's input: HxW, HxWx1, HxWx3 or HxWx4, not empty."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"image must be a non-empty HxW[xC] array, got shape "
                         f"{getattr(image, 'shape', None)}")


class RunService:
    """Runs :class:`RunRequest` s with one model cache (default: the session-wide one)."""

    def __init__(self, cache: Optional[ModelCache] = None) -> None:
        self.cache = cache if cache is not None else shared_cache()

    # ------------------------------------------------------------------ prepare
    def prepare(self, request: RunRequest, available=None) -> RunPlan:
        """Check ``request`` and choose what runs; ``available``: the model names Auto may
        use (default: :func:`.auto.available_models`)."""
        margins = check_margins(request.margins)
        outpainting = any(margins)
        if outpainting:
            _check_image(request.image)
        else:
            check_inputs(request.image, request.mask)
        name, reason = str(request.model).strip().lower(), ""
        if name == AUTO:
            if request.weights is not None:
                raise ValueError("weights need a specific model, not auto")
            from .auto import choose_model
            choice = choose_model(request.image.shape, None if outpainting else request.mask,
                                  margins, available=available, image=request.image)
            name, reason = choice.model, choice.reason
            if outpainting and name != "srn" and request.outpaint_fallback:
                name = request.outpaint_fallback.strip().lower()
                reason += f"; {short_title(name)} fills the new area"
        options = dict(request.model_options or {})
        if outpainting and name in WEIGHT_FREE_OUTPAINT:
            spec, weights = None, None
            loader_options, extend_options = split_options(options)
        else:
            spec, weights = _checked(name, request.weights)
            declared = {o.key for o in spec.user_options}
            loader_options, extend_options = (split_options(options, declared) if outpainting
                                              else (options, {}))
        strategy = HDStrategy.coerce(request.strategy, spec)
        if request.model_strategy and spec is not None and spec.default_strategy in STRATEGIES:
            strategy = replace(strategy, name=spec.default_strategy)
        # weight-free models run on the CPU: no need to ask torch (it would be imported)
        device = (devices.pick_device(request.device) if spec is not None and spec.needs_weights
                  else "cpu")
        return RunPlan(request, name, spec, reason, weights, strategy, device, margins,
                       loader_options, extend_options)

    # ------------------------------------------------------------------ execute
    def execute(self, plan: RunPlan, progress: Optional[ProgressCallback] = None,
                cancel: Optional[CancelToken] = None,
                notice: Optional[Notice] = None) -> RunResult:
        """Run ``plan``; raises :class:`~.progress.Cancelled`, :class:`OutOfMemoryError` or
        the error of the run. ``notice(text)`` hears each note (default: a warning)."""
        t0 = time.perf_counter()
        rep = as_reporter(progress, cancel)
        notes: list = []

        def heard(text: str, category=W.WeightsWarning) -> None:
            notes.append(text)
            if notice is not None:
                notice(text)
            else:
                warnings.warn(text, category, stacklevel=4)

        native = plan.spec.native_size if plan.spec is not None else 512
        attempts = [(plan.device, plan.strategy, "")]
        i = 0
        while True:
            device, strategy, _what = attempts[i]
            rep.check()
            try:
                image = self._attempt(plan, device, strategy, rep, heard)
                break
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - only out of memory is retried
                if not devices.is_out_of_memory(exc) or isinstance(exc, OutOfMemoryError):
                    raise
                if i == 0:
                    attempts += oom_plan(strategy, native, device)
                # what the failed attempt loaded must not stay on the device for the next one
                self.cache.unload_device(device)
                devices.free_device_memory(device)
                if i + 1 >= len(attempts):
                    tried = ", ".join(a[2] for a in attempts[1:])
                    raise OutOfMemoryError(
                        f"{plan.model}: out of memory "
                        + (f"even after {tried}" if tried else f"on {device}")
                        + "; try a smaller tile size or the CPU") from exc
                what = attempts[i + 1][2]
                heard(f"{plan.model}: out of memory on {device} ({strategy.name}); {what}",
                      RunWarning)
                rep.stage(f"out of memory: {what}", 0, 1)
                i += 1
        rep.check()
        return RunResult(image, plan.model, plan.reason, tuple(notes), time.perf_counter() - t0)

    def _attempt(self, plan: RunPlan, device: str, strategy: HDStrategy, rep, heard):
        req = plan.request
        model = plan.model
        if plan.spec is not None:
            rep.stage(f"loading {plan.spec.title}", 0, 1)
            model = self.cache.get(plan.spec, plan.weights, device, req.precision,
                                   plan.loader_options, notice=heard)
        if plan.outpainting:  # the request's quantize, else the one among the model options
            opts = dict(plan.extend_options)
            quantize = opts.pop("quantize", None)
            return extend(req.image, plan.margins, model, progress=rep,
                          quantize=req.quantize or quantize, strategy=strategy, blend=req.blend,
                          **opts)
        return fill(req.image, req.mask, model, strategy, req.blend, rep)

    def run(self, request: RunRequest, progress: Optional[ProgressCallback] = None,
            cancel: Optional[CancelToken] = None, notice: Optional[Notice] = None,
            available=None) -> RunResult:
        """:meth:`prepare` then :meth:`execute`."""
        return self.execute(self.prepare(request, available), progress, cancel, notice)

    # ------------------------------------------------------------------ models
    def load_model(self, name: str, weights=None, device: str = "auto",
                   precision: str = "fp32", notice: Optional[Notice] = None,
                   **options) -> InpaintModel:
        """The loaded model ``name`` from the cache (loaded now if it is not there); with
        ``weights=None`` a broken weight file is skipped for the next usable one and
        ``notice(text)`` (default: a ``weights.WeightsWarning``) says so."""
        spec, weights = _checked(name, weights)
        if spec is None:
            raise ValueError("load_model needs a model name, not auto")
        device = devices.pick_device(device) if spec.needs_weights else "cpu"
        return self.cache.get(spec, weights, device, precision, options, notice=notice)


_DEFAULT = RunService()  # holds no state of its own: the session's cache is shared_cache()


def default_service() -> RunService:
    """The session's service (on :func:`.model_cache.shared_cache`)."""
    return _DEFAULT


def run(request: RunRequest, progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None, notice: Optional[Notice] = None,
        available=None) -> RunResult:
    return default_service().run(request, progress, cancel, notice, available)


def load_model(name: str, weights=None, device: str = "auto", precision: str = "fp32",
               notice: Optional[Notice] = None, **options) -> InpaintModel:
    return default_service().load_model(name, weights, device, precision, notice, **options)


def inpaint(image: np.ndarray, mask: np.ndarray, model: "str | InpaintModel" = "telea",
            weights=None, strategy: "HDStrategy | str | None" = None, blend=None,
            device: str = "auto", precision: str = "fp32",
            progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
            model_options: Optional[dict] = None, notice: Optional[Notice] = None) -> np.ndarray:
    """Fill ``mask`` (uint8 HxW, 255 = fill) in ``image`` (RGB uint8/uint16 HxWx3); returns a
    new array of the same shape and dtype, byte-identical where mask == 0.

    model: a registry name, "auto", or an already loaded :class:`InpaintModel` (run as it is,
    without the out-of-memory plan). Other arguments: see :class:`RunRequest`."""
    if isinstance(model, InpaintModel):
        return fill(image, mask, model, strategy, blend, progress, cancel)
    return run(RunRequest(image, mask, model=model, weights=weights, strategy=strategy,
                          blend=blend, device=device, precision=precision,
                          model_options=model_options or {}),
               progress, cancel, notice).image


def outpaint(image: np.ndarray, margins: Sequence[int] = (0, 0, 0, 0), model="srn",
             weights=None, device: str = "cpu", precision: str = "fp32",
             progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
             model_options: Optional[dict] = None, quantize: Optional[str] = None,
             notice: Optional[Notice] = None, fallback: Optional[str] = None,
             strategy=None, blend=None, **opts) -> np.ndarray:
    """Extend ``image`` by ``margins`` = (top, left, bottom, right) (see :mod:`.outpaint`).

    model: "srn", "auto" (SRN when weights Auto may use are installed, else ``fallback``:
    default Telea on the new margin), a built-in method ("telea", "ns", "classical" ...), any
    inpainting model name,
    or a loaded model (run as it is). ``opts``: :data:`.outpaint.EXTEND_OPTIONS` (SRN's
    ``detail``, ``band`` ...; the classical ``radius``, ``grain``)."""
    if not isinstance(model, str) or not any(check_margins(margins)):
        return extend(image, margins, model, progress=progress, cancel=cancel,
                      quantize=quantize, strategy=strategy, blend=blend, **opts)
    options = dict(model_options or {})
    options.update(opts)
    return run(RunRequest(image, None, margins=tuple(margins), model=model, weights=weights,
                          strategy=strategy, blend=blend, device=device, precision=precision,
                          model_options=options, outpaint_fallback=fallback,
                          quantize=quantize),
               progress, cancel, notice).image


__all__ = ["RunRequest", "RunPlan", "RunResult", "RunService", "OutOfMemoryError",
           "RunWarning", "oom_plan", "check_model", "default_service", "run", "inpaint",
           "outpaint", "load_model"]
