"""Model registry: one :class:`ModelSpec` per model, one :class:`WeightSet` per weight file.

Specs are plain data (no torch import), so ``list_models()`` is cheap for the CLI and GUI.
Each adapter module in ``inpaint_gui.engine.models`` defines ``SPEC`` and a loader named by
``SPEC.loader`` ("module:function"); the loader builds an :class:`~.models.base.InpaintModel`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional

# Adapter modules, in the order models are listed.
MODEL_MODULES = ("classical", "patchmatch", "rfr", "aot", "srn", "lama", "pennet")


@dataclass(frozen=True)
class WeightSet:
    """One released or bundled weight file for a model.

    kind: "starter" (trained by us, shipped in ``models/``), "official" (the authors'
    release, downloaded by the user) or "imported" (any other file the user added).
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


@dataclass(frozen=True)
class ModelOption:
    """A whole-number loader option a user may set (Models panel, ``--option KEY=VALUE``)."""

    key: str
    label: str
    default: int
    minimum: int
    maximum: int
    tooltip: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about a model.

    task: "inpaint" or "outpaint". native_size: side the model was trained at.
    pad_mod: input sides are padded to a multiple of this. min_size: smallest side.
    square: the network only takes square inputs. max_size: cap on the working side
    (quadratic attention); None = no cap. value_range: what the network consumes.
    checkpoint_reader: "plain" (the loader reads state dicts with ``torch.load(weights_only=
    True)``: a pickle naming anything else is refused) or "any" (the loader also reads
    Lightning checkpoints and TorchScript archives, their objects rebuilt as inert
    placeholders by ``safe_unpickle``); weight status checks files the same way.
    crop_limit: longest side of a "crop" window this model works on before the window is
    downscaled for it; None = the strategy's ``resize_limit`` (models whose point is the
    photo's own detail, like PatchMatch, set a larger one).
    interruptible: False when one call into the model (native code) cannot stop part-way:
    a cancel then takes effect when that call returns, and the UI says so.
    availability: "module:function" returning None when the model can run here, else a
    one-line reason (e.g. a native library that failed to load); "" = always available.
    can_outpaint: the model extends a canvas well (SRN by design; Telea, Navier-Stokes and
    PatchMatch fill the new margin); networks trained on holes inside a photo are not offered
    for it (a margin is a hole with no far side: RFR left a dark fill there).
    user_options: :class:`ModelOption` entries the GUI shows for this model.
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
    loader: str = ""
    weight_sets: tuple = field(default_factory=tuple)
    checkpoint_reader: str = "plain"
    can_outpaint: bool = False
    crop_limit: Optional[int] = None
    interruptible: bool = True
    availability: str = ""
    user_options: tuple = ()  # ModelOption, ...: loader options the Models panel offers

    def weight_set(self, name: Optional[str] = None) -> Optional[WeightSet]:
        for ws in self.weight_sets:
            if name is None or ws.name == name:
                return ws
        return None


_SPECS: "dict[str, ModelSpec] | None" = None


def _load_specs() -> "dict[str, ModelSpec]":
    global _SPECS
    if _SPECS is None:
        specs: dict[str, ModelSpec] = {}
        for mod_name in MODEL_MODULES:
            try:
                mod = importlib.import_module(f"inpaint_gui.engine.models.{mod_name}")
            except ModuleNotFoundError as exc:  # adapter not written yet
                if exc.name and exc.name.endswith(f"models.{mod_name}"):
                    continue
                raise
            for spec in getattr(mod, "SPECS", None) or [mod.SPEC]:
                specs[spec.name] = spec
        _SPECS = specs
    return _SPECS


def list_models(task: Optional[str] = None) -> "list[ModelSpec]":
    """All registered models (optionally only those for ``task``)."""
    return [s for s in _load_specs().values() if task is None or s.task == task]


def get_spec(name: str) -> ModelSpec:
    specs = _load_specs()
    key = name.lower()
    if key not in specs:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(specs)}")
    return specs[key]


def _resolve(ref: str):
    mod_name, func = ref.split(":")
    return getattr(importlib.import_module(mod_name), func)


def resolve_loader(spec: ModelSpec):
    return _resolve(spec.loader)


def unavailable_reason(spec: ModelSpec) -> Optional[str]:
    """None when ``spec`` can run on this installation, else why not (one line)."""
    if not spec.availability:
        return None
    try:
        reason = _resolve(spec.availability)()
    except Exception as exc:  # a broken check must not break the model list
        return f"availability check failed: {type(exc).__name__}: {exc}"
    return str(reason) if reason else None


class ModelUnavailableError(RuntimeError):
    """The model cannot run on this installation; the message says why."""


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])
