"""Typed run settings shared by the GUI (models dock, QSettings) and the CLI (JSON).

:class:`RunSettings` says *what* to run (model, weights) and *how* (HD strategy, seam
blending, device, precision). It reuses :class:`~.pipeline.HDStrategy` for the strategy
fields; seam blending is stored as ``blend`` (mode) + ``blend_radius`` and turned into the
engine's ``blending.BlendSettings`` by :meth:`RunSettings.engine_blend` when that module exists.

``to_dict()`` gives a flat, JSON/QSettings-friendly dict; ``from_dict()`` accepts it back,
coercing the strings QSettings may return ("512", "true"); ``strict=False`` replaces invalid
values by defaults instead of raising (for restoring settings written by another version).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from .pipeline import STRATEGIES, HDStrategy

SETTINGS_VERSION = 1
AUTO_MODEL = "auto"
BLEND_MODES = ("none", "feather", "poisson", "color")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "fp16", "bf16")
STRATEGY_FIELDS = ("resize_limit", "crop_trigger", "crop_margin", "tile_size", "tile_overlap")


class SettingsError(ValueError):
    """Invalid run settings; the message is meant for the user."""


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name} must be a whole number, not {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
    if f != int(f):
        raise SettingsError(f"{name} must be a whole number, not {value!r}")
    return int(f)


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


@dataclass(frozen=True)
class RunSettings:
    """One model run.

    model: registry name or ``"auto"`` (resolved per job by :func:`.auto.choose_model`).
    weights: None = best available weight set; else the name of one of the model's weight
        sets, or a file path.
    strategy: the HD strategy (:class:`HDStrategy`); with ``model_strategy`` True its *name*
        is replaced by the model's own ``default_strategy`` at run time (limits kept).
    blend / blend_radius: seam treatment ("none", "feather", "poisson", "color") and its radius.
    device: "auto" | "cpu" | "cuda" | "mps"; precision: "fp32" | "fp16" | "bf16".
    model_options: extra loader options (e.g. ``{"radius": 3}`` for the classical fills).
    """

    model: str = AUTO_MODEL
    weights: Optional[str] = None
    strategy: HDStrategy = field(default_factory=HDStrategy)
    model_strategy: bool = True
    blend: str = "none"
    blend_radius: int = 8
    device: str = "auto"
    precision: str = "fp32"
    model_options: tuple = ()  # (key, value) pairs, hashable

    def __post_init__(self) -> None:
        if isinstance(self.strategy, str):
            object.__setattr__(self, "strategy", HDStrategy(name=self.strategy))
        if isinstance(self.model_options, Mapping):
            object.__setattr__(self, "model_options", tuple(sorted(self.model_options.items())))
        object.__setattr__(self, "model", str(self.model).strip().lower())
        if self.weights is not None:
            w = os.fspath(self.weights) if isinstance(self.weights, os.PathLike) else str(self.weights)
            object.__setattr__(self, "weights", w.strip() or None)
        self.validate(check_registry=False)

    # ------------------------------------------------------------------ validation
    def validate(self, check_registry: bool = True) -> "RunSettings":
        """Raise :class:`SettingsError` if a field is out of range; returns self.

        With ``check_registry`` the model must be registered and a named weight set must
        belong to it."""
        if not self.model:
            raise SettingsError("no model chosen")
        if self.blend not in BLEND_MODES:
            raise SettingsError(f"unknown seam blend {self.blend!r}; choose one of {', '.join(BLEND_MODES)}")
        if not 0 <= self.blend_radius <= 512:
            raise SettingsError("blend radius must be between 0 and 512 pixels")
        if self.device.split(":")[0] not in DEVICES:
            raise SettingsError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if not isinstance(self.strategy, HDStrategy):
            raise SettingsError("strategy must be an HDStrategy")
        if self.strategy.tile_size and self.strategy.tile_overlap >= self.strategy.tile_size:
            raise SettingsError("tile overlap must be smaller than the tile size")
        if self.strategy.tile_size and self.strategy.tile_size < 32:
            raise SettingsError("tile size must be 0 (automatic) or at least 32 pixels")
        if check_registry and self.model != AUTO_MODEL:
            from .registry import UnknownModelError, get_spec
            try:
                spec = get_spec(self.model)
            except UnknownModelError as exc:
                raise SettingsError(str(exc)) from None
            if self.weights and not self._looks_like_path(self.weights) and spec.weight_set(self.weights) is None:
                raise SettingsError(f"{spec.title} has no weight set named {self.weights!r}")
        return self

    @staticmethod
    def _looks_like_path(value: str) -> bool:
        return os.sep in value or "/" in value or Path(value).suffix.lower() in (
            ".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".tar")

    # ------------------------------------------------------------------ engine arguments
    @property
    def is_auto(self) -> bool:
        return self.model == AUTO_MODEL

    def options_dict(self) -> dict:
        return dict(self.model_options)

    def engine_strategy(self, spec=None) -> HDStrategy:
        """The :class:`HDStrategy` to pass to ``inpaint`` for ``spec`` (a ModelSpec or None)."""
        if self.model_strategy and spec is not None and spec.default_strategy in STRATEGIES:
            return replace(self.strategy, name=spec.default_strategy)
        return self.strategy

    def engine_blend(self):
        """``blend`` argument for ``inpaint``: a ``BlendSettings`` when the engine has one, else the mode."""
        if self.blend == "none":
            return "none"
        try:
            from .blending import BlendSettings  # type: ignore
        except ImportError:
            return self.blend
        names = {f.name for f in dataclasses.fields(BlendSettings)} if dataclasses.is_dataclass(BlendSettings) else set()
        kwargs = {"mode": self.blend}
        for cand in ("radius", "feather_radius", "width"):
            if cand in names:
                kwargs[cand] = self.blend_radius
                break
        try:
            return BlendSettings(**kwargs)
        except Exception:
            return self.blend

    def engine_weights(self, spec=None):
        """``weights`` argument for ``inpaint``: None, or a file path (weight-set names resolved).

        Raises ``weights.MissingWeightsError`` if a named weight set's file is not installed."""
        if self.weights is None:
            return None
        if spec is not None and not self._looks_like_path(self.weights):
            ws = spec.weight_set(self.weights)
            if ws is not None:
                from . import weights as W
                p = W.find_weight_file(ws)
                if p is None:
                    raise W.MissingWeightsError(
                        f"{spec.title}: weight set {ws.name!r} ({ws.filename}) is not installed; "
                        f"put it into {W.user_models_dir()}")
                return str(p)
        return self.weights

    def engine_kwargs(self, spec=None) -> dict:
        """All keyword arguments of ``inpaint`` except image, mask, progress and cancel."""
        kw = dict(model=self.model, weights=self.engine_weights(spec),
                  strategy=self.engine_strategy(spec), blend=self.engine_blend(),
                  device=self.device, precision=self.precision)
        if self.model_options:
            kw["model_options"] = self.options_dict()
        return kw

    def weights_label(self) -> str:
        """Short label of the weights for result captions: "default", a set name or a file name."""
        if self.weights is None:
            return "default"
        return Path(self.weights).name if self._looks_like_path(self.weights) else self.weights

    def with_model(self, model: str, weights: Optional[str] = None) -> "RunSettings":
        return replace(self, model=model, weights=weights)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        d = {
            "version": SETTINGS_VERSION,
            "model": self.model,
            "weights": self.weights or "",
            "strategy": self.strategy.name,
            "model_strategy": self.model_strategy,
            "blend": self.blend,
            "blend_radius": self.blend_radius,
            "device": self.device,
            "precision": self.precision,
        }
        for k in STRATEGY_FIELDS:
            d[k] = getattr(self.strategy, k)
        if self.model_options:
            d["model_options"] = dict(self.model_options)
        return d

    @classmethod
    def from_dict(cls, data: Mapping, strict: bool = True) -> "RunSettings":
        """Build from :meth:`to_dict` output (or QSettings values). Unknown keys are ignored.

        strict=False: any invalid field falls back to its default instead of raising."""
        default = cls()
        data = dict(data or {})
        if isinstance(data.get("strategy"), Mapping):  # nested form
            nested = dict(data.pop("strategy"))
            data["strategy"] = nested.get("name", default.strategy.name)
            for k in STRATEGY_FIELDS:
                if k in nested:
                    data.setdefault(k, nested[k])

        def get(name, conv, fallback):
            if name not in data or data[name] is None:
                return fallback
            try:
                return conv(data[name], name)
            except SettingsError:
                if strict:
                    raise
                return fallback

        def as_str(v, name):
            if not isinstance(v, (str, int, float)):
                raise SettingsError(f"{name} must be text, not {v!r}")
            return str(v).strip()

        sfields = {}
        for k in STRATEGY_FIELDS:
            sfields[k] = get(k, _as_int, getattr(default.strategy, k))
        sname = get("strategy", as_str, default.strategy.name).lower()
        try:
            strategy = HDStrategy(name=sname, **sfields)
        except ValueError as exc:
            if strict:
                raise SettingsError(str(exc)) from None
            try:
                strategy = HDStrategy(name=sname if sname in STRATEGIES else default.strategy.name)
            except ValueError:
                strategy = default.strategy
        opts = data.get("model_options") or {}
        if not isinstance(opts, Mapping):
            if strict:
                raise SettingsError("model_options must be a mapping")
            opts = {}
        kwargs = dict(
            model=get("model", as_str, default.model) or default.model,
            weights=get("weights", as_str, None) or None,
            strategy=strategy,
            model_strategy=get("model_strategy", _as_bool, default.model_strategy),
            blend=get("blend", as_str, default.blend).lower(),
            blend_radius=get("blend_radius", _as_int, default.blend_radius),
            device=get("device", as_str, default.device).lower(),
            precision=get("precision", as_str, default.precision).lower(),
            model_options=tuple(sorted(opts.items())),
        )
        try:
            return cls(**kwargs)
        except SettingsError:
            if strict:
                raise
        # lenient: reset each field that is invalid on its own to its default
        for name in list(kwargs):
            try:
                cls(**{name: kwargs[name]})
            except (SettingsError, ValueError, TypeError):
                kwargs[name] = getattr(default, name)
        try:
            return cls(**kwargs)
        except SettingsError:
            return default
