"""Model registry: one :class:`ModelSpec` per model, one :class:`WeightSet` per weight file.

Specs are plain data (no torch import), so ``list_models()`` is cheap for the CLI and GUI.
Each adapter module in ``inpaint_gui.engine.models`` defines an adapter class
(:class:`~.models.base.ModelAdapter`) and registers it with ``@register_model``; the adapter
serves the model's specs and loads it. ``inpaint_gui.engine.models`` imports every adapter
module (in the order models are listed), and importing ``inpaint_gui.engine`` imports that
package, so the registry is complete whenever any engine module can be used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class WeightSet:
    """One released or bundled weight file for a model.

    kind: "starter" (trained by us, shipped in ``models/``), "official" (the authors'
    release, downloaded by the user) or "imported" (any other file the user added).
    A weight set is named by its tag ``"<model>:<name>"`` (e.g. ``"aot:places2"``).
    """

    name: str
    kind: str
    filename: str
    source: str = ""
    licence: str = ""
    training_data: str = ""
    resolution: Optional[int] = None
    sha256: Optional[str] = None
    card: Optional[str] = None
    variant: str = "official"
    options: tuple = ()  # (key, value) pairs passed to the network constructor
    # False: our own measurements (see the card) show this set loses to the classical fill, so
    # the Auto choice does not pick it (the user can still select it by hand).
    auto_ok: bool = True
    # with auto_ok=False: why, in the words of Auto's reason line (default: measured below Telea)
    auto_reason: str = ""
    # the download's size in words ("about 410 MB"), "" when unknown (shown to the user)
    size: str = ""
    # True: the pipeline matches this set's fills to the photo at the hole's edge (Poisson at
    # the model's resolution, :func:`.pipeline.seam_matched`): our small starters carry a colour
    # bias the official networks do not (loader option ``seam_match`` overrides it)
    seam_match: bool = False
    # the deepest hole (model pixels from the nearest known one) these weights fill without
    # drifting in colour; the pipeline shrinks windows with deeper holes to fit
    # (:func:`.pipeline.predict_window`; loader option ``hole_reach``, 0 = no limit)
    hole_reach: Optional[int] = None
    # percent (0-100) of a PatchMatch fill's fine detail the pipeline adds to these weights'
    # fills (:func:`.pipeline.patch_detailed`; loader option ``patch_detail``, 0 = none)
    patch_detail: int = 0
    # True: the pipeline averages each fill with the fill of the mirrored window, mirrored back
    # (twice the network's time; loader option ``flip_average``)
    flip_average: bool = False
    # (key, value) defaults of the extension settings with these weights
    # (:data:`.outpaint.SRN_DEFAULTS`; what the user sets overrides them)
    outpaint_options: tuple = ()


@dataclass(frozen=True)
class ModelOption:
    """A whole-number loader option a user may set (Models panel, ``--option KEY=VALUE``)."""

    key: str
    label: str
    default: int
    minimum: int
    maximum: int
    tooltip: str = ""
    # shown instead of ``minimum`` when that value means something else (e.g. -1: the weights'
    # own setting)
    special: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about a model.

    task: "inpaint" or "outpaint". native_size: side the model was trained at.
    pad_mod: input sides are padded to a multiple of this. min_size: smallest side.
    square: the network only takes square inputs. max_size: cap on the working side
    (quadratic attention); None = no cap. value_range: what the network consumes.
    short_title: the name in running text (Auto's reasons, result names), e.g. "RFR".
    network: the ``nets.create`` name of its PyTorch network ("" = none: OpenCV, PatchMatch).
    checkpoint_reader: "plain" (the loader reads state dicts with ``torch.load(weights_only=
    True)``: a pickle naming anything else is refused) or "any" (the loader also reads
    Lightning checkpoints and TorchScript archives, their objects rebuilt as inert
    placeholders by ``safe_unpickle``); weight status checks files the same way.
    crop_limit: longest side of a "crop" window this model works on before the window is
    downscaled for it; None = the strategy's ``resize_limit`` (models whose point is the
    photo's own detail, like PatchMatch, set a larger one).
    interruptible: False when one call into the model (native code) cannot stop part-way:
    a cancel then takes effect when that call returns, and the UI says so.
    user_options: :class:`ModelOption` entries the GUI shows for this model.
    can_outpaint: the model extends a canvas well (SRN by design; Telea, Navier-Stokes and
    PatchMatch fill the new margin); networks trained on holes inside a photo are not offered
    for it (a margin is a hole with no far side: RFR left a dark fill there).
    """

    name: str
    title: str
    task: str
    native_size: int
    pad_mod: int = 1
    min_size: int = 1
    square: bool = False
    max_size: Optional[int] = None
    value_range: str = "uint8"
    needs_weights: bool = True
    default_strategy: str = "crop"
    description: str = ""
    weight_sets: tuple = field(default_factory=tuple)
    checkpoint_reader: str = "plain"
    crop_limit: Optional[int] = None
    interruptible: bool = True
    user_options: tuple = ()  # ModelOption, ...: loader options the Models panel offers
    short_title: str = ""
    network: str = ""
    can_outpaint: bool = False

    def __post_init__(self) -> None:
        if not self.short_title:
            object.__setattr__(self, "short_title", self.title)

    def weight_set(self, name: Optional[str] = None) -> Optional[WeightSet]:
        for ws in self.weight_sets:
            if name is None or ws.name == name:
                return ws
        return None

    def weight_set_for_file(self, filename: str) -> Optional[WeightSet]:
        """The weight set whose registered file name is ``filename`` (a base name)."""
        for ws in self.weight_sets:
            if ws.filename == filename:
                return ws
        return None


# name -> (spec, adapter class), in registration order (the order models are listed)
_MODELS: "dict[str, tuple[ModelSpec, type]]" = {}


def register_model(adapter: type) -> type:
    """Class decorator: register every spec an adapter serves (``adapter.specs``)."""
    for spec in adapter.specs:
        key = spec.name.lower()
        if key in _MODELS and _MODELS[key][1] is not adapter:
            raise ValueError(f"model {spec.name!r} is registered twice "
                             f"({_MODELS[key][1].__name__}, {adapter.__name__})")
        _MODELS[key] = (spec, adapter)
    return adapter


def unregister_model(name: str) -> None:
    """Forget ``name`` (tests that register a model of their own)."""
    _MODELS.pop(name.lower(), None)


def list_models(task: Optional[str] = None) -> "list[ModelSpec]":
    """All registered models (optionally only those for ``task``)."""
    return [s for s, _a in _MODELS.values() if task is None or s.task == task]


def _entry(name: str) -> "tuple[ModelSpec, type]":
    key = name.lower()
    if key not in _MODELS:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(_MODELS)}")
    return _MODELS[key]


def get_spec(name: str) -> ModelSpec:
    return _entry(name)[0]


def short_title(name: str) -> str:
    """The model's name in running text ("RFR", "Telea"); ``name`` itself if not registered."""
    key = name.lower()
    return _MODELS[key][0].short_title if key in _MODELS else name


def get_adapter(model: "str | ModelSpec") -> type:
    """The adapter class (:class:`~.models.base.ModelAdapter`) that loads ``model``."""
    return _entry(model if isinstance(model, str) else model.name)[1]


def unavailable_reason(spec: ModelSpec) -> Optional[str]:
    """None when ``spec`` can run on this installation, else why not (one line)."""
    try:
        reason = get_adapter(spec).unavailable_reason()
    except Exception as exc:  # a broken check must not break the model list
        return f"availability check failed: {type(exc).__name__}: {exc}"
    return str(reason) if reason else None


class ModelUnavailableError(RuntimeError):
    """The model cannot run on this installation; the message says why."""


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])
