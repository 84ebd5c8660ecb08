"""Typed run settings of the GUI (models dock, QSettings, JSON).

:class:`RunSettings` says *what* to run (model, weights) and *how* (HD strategy, seam
blending, device, precision). It reuses :class:`~.pipeline.HDStrategy` for the strategy
fields; seam blending is stored as ``blend`` (mode) + ``blend_radius`` and turned into the
engine's ``blending.BlendSettings`` by :meth:`RunSettings.blend_settings`.

``to_dict()`` gives a flat, JSON/QSettings-friendly dict; ``from_dict()`` accepts it back,
coercing the strings QSettings may return ("512", "true"); ``strict=False`` replaces invalid
values by defaults instead of raising (for restoring settings written by another version).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from .blending import BLEND_MODES, BlendSettings
from .devices import DEVICES, PRECISIONS
from .pipeline import STRATEGIES, HDStrategy

# 2: weight sets are named by their tags ("aot:places2"); version 1 stored the bare set name
SETTINGS_VERSION = 2
AUTO_MODEL = "auto"
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


def _as_str(value: Any, name: str) -> str:
    if not isinstance(value, (str, int, float)):
        raise SettingsError(f"{name} must be text, not {value!r}")
    return str(value).strip()


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
    weights: None = best available weight set; else a weight-set tag ``"<model>:<set>"``
        (``"aot:places2"``) or a file path.
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
            from .weights import WeightsError, parse_tag
            try:
                spec = get_spec(self.model)
                tag = parse_tag(self.weights) if self.weights else None
            except (UnknownModelError, WeightsError) as exc:
                raise SettingsError(str(exc)) from None
            if tag is not None and tag[0].name != spec.name:
                raise SettingsError(f"{self.weights} names weights of {tag[0].title}, "
                                    f"not of {spec.title}")
        return self

    # ------------------------------------------------------------------ engine arguments
    @property
    def is_auto(self) -> bool:
        return self.model == AUTO_MODEL

    def options_dict(self) -> dict:
        return dict(self.model_options)

    def blend_settings(self) -> BlendSettings:
        return BlendSettings(mode=self.blend, radius=self.blend_radius)

    def request(self, image, mask=None, margins=(0, 0, 0, 0)):
        """The run service's :class:`~.service.RunRequest` for ``image`` (RGB HxWx3),
        ``mask`` (uint8 HxW, 255 = fill) or ``margins`` (top, left, bottom, right)."""
        from .service import RunRequest
        return RunRequest(image, mask, margins=tuple(margins), model=self.model,
                          weights=self.weights, strategy=self.strategy,
                          model_strategy=self.model_strategy, blend=self.blend_settings(),
                          device=self.device, precision=self.precision,
                          model_options=self.options_dict())

    def weights_label(self) -> str:
        """Short label of the weights for result captions: "default", a set name or a file name."""
        if self.weights is None:
            return "default"
        from .weights import WeightsError, parse_tag
        try:
            tag = parse_tag(self.weights)
        except WeightsError:
            tag = None
        return tag[1].name if tag is not None else Path(self.weights).name

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

        strategy = _strategy_from(get, default.strategy, strict)
        weights = get("weights", _as_str, None) or None
        model = get("model", _as_str, default.model) or default.model
        if weights and get("version", _as_int, 1) < 2:
            weights = _tag_of_v1_weights(model, weights)
        opts = data.get("model_options") or {}
        if not isinstance(opts, Mapping):
            if strict:
                raise SettingsError("model_options must be a mapping")
            opts = {}
        kwargs = dict(
            model=model,
            weights=weights,
            strategy=strategy,
            model_strategy=get("model_strategy", _as_bool, default.model_strategy),
            blend=get("blend", _as_str, default.blend).lower(),
            blend_radius=get("blend_radius", _as_int, default.blend_radius),
            device=get("device", _as_str, default.device).lower(),
            precision=get("precision", _as_str, default.precision).lower(),
            model_options=tuple(sorted(opts.items())),
        )
        try:
            return cls(**kwargs)
        except SettingsError:
            if strict:
                raise
        return cls._lenient(kwargs)

    @classmethod
    def _lenient(cls, kwargs: dict) -> "RunSettings":
        """``cls(**kwargs)`` with each field that is invalid on its own reset to its default."""
        default = cls()
        for name in list(kwargs):
            try:
                cls(**{name: kwargs[name]})
            except (SettingsError, ValueError, TypeError):
                kwargs[name] = getattr(default, name)
        try:
            return cls(**kwargs)
        except SettingsError:
            return default


def _strategy_from(get, default: HDStrategy, strict: bool) -> HDStrategy:
    """The :class:`HDStrategy` of a settings dict (``get(name, conv, fallback)`` reads a field);
    lenient (``strict`` False): an invalid strategy keeps what it can of its name."""
    fields = {k: get(k, _as_int, getattr(default, k)) for k in STRATEGY_FIELDS}
    name = get("strategy", _as_str, default.name).lower()
    try:
        return HDStrategy(name=name, **fields)
    except ValueError as exc:
        if strict:
            raise SettingsError(str(exc)) from None
    try:
        return HDStrategy(name=name if name in STRATEGIES else default.name)
    except ValueError:
        return default


def _tag_of_v1_weights(model: str, weights: str) -> str:
    """Version 1 stored a weight set by its bare name ("places2") and a file by its path: a
    value without a folder that names one of the model's sets becomes that set's tag."""
    if "/" in weights or os.sep in weights:
        return weights
    from .registry import UnknownModelError, get_spec
    from .weights import weight_tag
    try:
        spec = get_spec(model)
    except UnknownModelError:
        return weights
    ws = spec.weight_set(weights)
    return weight_tag(spec, ws) if ws is not None else weights
