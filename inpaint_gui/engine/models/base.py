"""Base classes of every model: the adapter that loads it and the model the pipeline runs.

:class:`ModelAdapter` (one per adapter module, registered with ``@register_model``) serves a
model family's specs and loads it; :class:`TorchAdapter` is the one loader of every PyTorch
network: read the weights (:func:`~..weights.read_weights`), extract the generator's state
dict, take the network options from the weight set, the checkpoint and the tensor shapes,
build the network (``nets.create``), load it strictly and wrap it in its
:class:`TorchInpaintModel`. Adapters only override the steps where their checkpoints differ.

The pipeline owns padding, cropping, tiling and compositing; a model only predicts.
``predict(image, mask)`` receives an already padded/cropped window that satisfies the
spec's constraints (sides multiple of ``pad_mod``, >= ``min_size``, square if required):

* image: float32 HxWx3, RGB, values in [0, 1]
* mask:  float32 HxW, 1.0 = fill (hole), 0.0 = known
* returns float32 HxWx3 RGB in [0, 1]: the full-frame prediction (not composited;
  the pipeline keeps the known pixels byte-identical itself).
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ..registry import ModelOption, ModelSpec, get_adapter, list_models

#: the learned models' "Photo grain" option (:func:`~inpaint_gui.engine.pipeline.patch_detailed`);
#: -1 keeps the weight set's own share
PATCH_DETAIL_OPTION = ModelOption(
    "patch_detail", "Photo grain %", -1, -1, 100, special="weights' own",
    tooltip=("Adds this share of the fine grain of a PatchMatch fill (patches of this photo) to "
             "the network's fill, where the two agree in colour: grass, gravel and foliage look "
             "less smooth. 0 = the network's own fill."))


class InpaintModel:
    spec: ModelSpec
    # Deepest hole (px from the nearest known pixel, at the model's input scale) the model can
    # fill; the pipeline shrinks windows with deeper holes to fit (None = no limit).
    hole_reach: "int | None" = None
    # True: the pipeline matches the fill to the photo at the hole's edge at the model's
    # resolution (:func:`~inpaint_gui.engine.pipeline.seam_matched`); set from the weight set
    seam_match: bool = False
    # > 0: the pipeline adds this share (0..1) of a PatchMatch fill's fine detail to the fill
    # (:func:`~inpaint_gui.engine.pipeline.patch_detailed`); set from the weight set
    patch_detail: float = 0.0
    # average with the mirrored window's fill (:func:`~inpaint_gui.engine.pipeline.predict_window`);
    # set from the weight set
    flip_average: bool = False
    # (key, value) defaults of :func:`~inpaint_gui.engine.outpaint.outpaint_float` for these
    # weights; set from the weight set
    outpaint_defaults: tuple = ()

    def __init__(self, spec: ModelSpec, device: str = "cpu") -> None:
        self.spec = spec
        self.device = device

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to(self, device: str) -> "InpaintModel":
        """Move to ``device`` ("cpu", "cuda", "mps"); classical models ignore it."""
        self.device = device
        return self

    def close(self) -> None:
        """Free memory held by the model (GPU tensors)."""


class TorchInpaintModel(InpaintModel):
    """A model backed by an ``nn.Module``; subclasses implement :meth:`forward_tensors`.

    precision: "fp32", "fp16" or "bf16"; fp16 runs on CUDA only, bf16 on CUDA and on CPUs with
    native bf16 (AVX512-BF16 / AMX), anything else runs fp32 (see
    :func:`~inpaint_gui.engine.devices.effective_precision`).
    """

    def __init__(self, spec: ModelSpec, net, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(spec, device)
        self.prepare_net(net)
        self.net = net.eval()
        self.precision = precision
        self.to(device)

    def to(self, device: str) -> "TorchInpaintModel":
        self.device = device
        self.net.to(device)
        return self

    def _autocast(self):
        from ..devices import autocast_context
        return autocast_context(self.device, self.precision)

    def _inference(self):
        """The context of every forward: no autograd, the precision's autocast, freed large
        blocks reused (:func:`~inpaint_gui.engine.memory.reuse_freed_memory`)."""
        from contextlib import ExitStack

        import torch

        from ..memory import reuse_freed_memory
        stack = ExitStack()
        stack.enter_context(reuse_freed_memory())
        stack.enter_context(torch.inference_mode())
        stack.enter_context(self._autocast())
        return stack

    @staticmethod
    def prepare_net(net) -> None:
        """Set up a freshly built network the way this model runs it (also for training)."""

    @staticmethod
    def net_inputs(image01, mask01) -> tuple:
        """The network's forward arguments in the official convention (value range, mask
        polarity, masked input) for image01 (1,3,H,W) RGB [0,1] and mask01 (1,1,H,W) 1 = fill."""
        raise NotImplementedError

    @staticmethod
    def net_output(out):
        """The forward's result as (1,3,H,W) RGB, nominally [0,1] (clamped by :meth:`predict`)."""
        return out

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(self.device)
        msk = torch.from_numpy(np.ascontiguousarray(mask))[None, None].to(self.device)
        with self._inference():
            out = self.forward_tensors(img.float(), msk.float())
            out = out.float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(out, dtype=np.float32)

    def forward_tensors(self, image01, mask01):
        """image01: (1,3,H,W) RGB [0,1]; mask01: (1,1,H,W) 1 = fill. Returns (1,3,H,W) RGB [0,1]."""
        return self.net_output(self.net(*self.net_inputs(image01, mask01)))

    def close(self) -> None:
        self.net.to("cpu")


# ============================================================================ adapters

class ModelAdapter:
    """One model family: the specs it serves (``specs``) and how one of them is loaded.

    Subclasses are registered with ``@registry.register_model``; they must not import torch
    (or a native library) at module level, so listing models stays cheap."""

    specs: tuple = ()

    @classmethod
    def unavailable_reason(cls) -> Optional[str]:
        """None when the family can run on this installation, else why not (one line)."""
        return None

    @classmethod
    def load(cls, spec: Optional[ModelSpec] = None, weights=None, device: str = "cpu",
             precision: str = "fp32", **options) -> InpaintModel:  # pragma: no cover - abstract
        """The model for ``spec`` (None: the family's first) with ``weights``: None (best
        installed set), a path or a state dict; ``options``: loader options (network variant
        keywords, ``radius`` ...)."""
        raise NotImplementedError


#: Dict keys under which our own checkpoint files keep the network options.
CONFIG_KEYS = ("net_kwargs", "config", "net_options", "options")


def checkpoint_config(obj, keys: "tuple[str, ...]") -> dict:
    """Network options among ``keys`` stored in one of our own checkpoint files
    (``{'config': {...}, 'state_dict': ...}``, as ``inpaint train`` exports them)."""
    if isinstance(obj, Mapping):
        cfg = next((obj[k] for k in CONFIG_KEYS if obj.get(k)), None)
        if isinstance(cfg, Mapping):
            return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in keys}
    return {}


def tensors_under(obj, wrapper_keys: "tuple[str, ...]") -> Mapping:
    """``{dotted.name: tensor}`` under the first of ``wrapper_keys`` in ``obj`` that holds a
    mapping, else of the whole object (Lightning checkpoints, TorchScript trees, wrapped
    dicts); raises ``CheckpointFormatError`` when there is no tensor."""
    from ..safe_unpickle import named_tensors
    from ..weights import CheckpointFormatError
    if isinstance(obj, Mapping):
        obj = next((obj[k] for k in wrapper_keys if isinstance(obj.get(k), Mapping)), obj)
    tensors = named_tensors(obj)
    if not tensors:
        raise CheckpointFormatError("the checkpoint holds no tensors")
    return tensors


def strip_prefix_to(sd: dict, anchor: str) -> dict:
    """Strip a common key prefix (``module.``, ``generator.``, ``netG.`` ...) found in front of
    ``anchor``; keys outside that prefix are dropped when not every key has it."""
    if anchor in sd:
        return sd
    for k in sd:
        if k.endswith("." + anchor):
            prefix = k[: -len(anchor)]
            return {key[len(prefix):]: v for key, v in sd.items() if key.startswith(prefix)}
    return sd


class TorchAdapter(ModelAdapter):
    """A model whose network is ``nets.create(spec.network)``.

    ``net_options``: the constructor keywords the adapter accepts from weight sets, checkpoints
    and loader options; ``model_class``: the :class:`TorchInpaintModel` it runs as;
    ``det_init``: keywords of ``nets.detinit.deterministic_state_dict`` for the network (the
    conformance fixtures' and the benchmark's deterministic weights);
    ``converts_tensorflow``: the official checkpoints are TensorFlow files, converted on import."""

    net_options: tuple = ()
    model_class: type = TorchInpaintModel
    det_init: dict = {}
    converts_tensorflow = False
    # a key of the network's own state dict: a prefix found in front of it is stripped and the
    # keys are checked to be this model's ("" = neither)
    anchor_key: str = ""
    # prefixes under which a checkpoint may keep the network's keys, tried in order by
    # ``safe_unpickle.select_by_keys`` against the built network's keys (() = none)
    key_prefixes: tuple = ()
    # the loader option ``fast_path`` (default True) switches the network's fast inference path
    fast_option = False

    # ------------------------------------------------------------------ the loading steps
    @classmethod
    def extract(cls, obj, spec: ModelSpec) -> Mapping:
        """The generator's tensors from what the file held (default: the tensor dict inside
        common containers, ``module.`` prefixes stripped; with :attr:`anchor_key` the prefix
        in front of it too, and the keys checked to be ``spec``'s network's)."""
        from ..weights import CheckpointFormatError, unwrap_state_dict
        if isinstance(obj, Mapping) and not obj:
            raise CheckpointFormatError("the checkpoint is empty")
        sd = unwrap_state_dict(obj)
        if cls.anchor_key:
            sd = strip_prefix_to(sd, cls.anchor_key)
            check_architecture(sd, spec)
        return sd

    @classmethod
    def detected_options(cls, obj, sd: Mapping) -> dict:
        """Network options the checkpoint says (its stored config, its tensor shapes)."""
        return {}

    @classmethod
    def fit(cls, sd: Mapping, net) -> Mapping:
        """``sd`` keyed as ``net`` expects it: as it is, or with :attr:`key_prefixes` the
        tensors under the prefix that holds the network's keys."""
        if not cls.key_prefixes:
            return sd
        from ..safe_unpickle import select_by_keys
        return select_by_keys(sd, list(net.state_dict().keys()), preferred=cls.key_prefixes)

    @classmethod
    def net_kwargs(cls, ws, detected: dict, options: dict) -> dict:
        """Constructor keywords: the weight set's options, then what the checkpoint says, then
        the loader options among :attr:`net_options` (taken out of ``options``)."""
        kw = dict(ws.options) if ws is not None and ws.options else {}
        kw.update(detected)
        for k in cls.net_options:
            if k in options:
                kw[k] = options.pop(k)
        return kw

    @classmethod
    def build_net(cls, spec: ModelSpec, **kwargs):
        from ..nets import create
        return create(spec.network, **kwargs)

    @classmethod
    def wrap(cls, spec: ModelSpec, net, device: str, precision: str, options: dict) -> InpaintModel:
        if cls.fast_option:
            net.fast_path = bool(options.pop("fast_path", True))
        return cls.model_class(spec, net, device=device, precision=precision)

    @classmethod
    def load(cls, spec: Optional[ModelSpec] = None, weights=None, device: str = "cpu",
             precision: str = "fp32", **options) -> InpaintModel:
        from ..weights import load_into, read_weights
        spec = spec or cls.specs[0]
        obj, ws = read_weights(spec, weights)
        seam = options.pop("seam_match", ws.seam_match if ws is not None else False)
        reach = options.pop("hole_reach", ws.hole_reach if ws is not None else None)
        detail = options.pop("patch_detail", -1)
        flip = options.pop("flip_average", ws.flip_average if ws is not None else False)
        sd = cls.extract(obj, spec)
        net = cls.build_net(spec, **cls.net_kwargs(ws, cls.detected_options(obj, sd), options))
        load_into(net, cls.fit(sd, net), model_name=spec.title)
        model = cls.wrap(spec, net, device, precision, options)
        from ..settings import _as_bool, _as_int  # the settings' readers ("0", "false", "48.0", ...)
        model.seam_match = _as_bool(seam, "seam_match")
        model.flip_average = _as_bool(flip, "flip_average")
        model.patch_detail = patch_detail_share(detail, ws.patch_detail if ws is not None else 0)
        model.outpaint_defaults = tuple(ws.outpaint_options) if ws is not None else ()
        reach = _as_int(reach, "hole_reach") if reach is not None else 0
        if reach > 0:  # the weights' reach and the network's own (RFR's recurrences): the smaller
            model.hole_reach = min(reach, model.hole_reach or reach)
        return model

    # ------------------------------------------------------------------ whose weights are these
    @classmethod
    def recognises(cls, keys: "set[str]") -> "Optional[tuple[str, str]]":
        """``(what the keys are, advice)`` when a state dict's ``keys`` are this family's or
        those of a file that comes with it (e.g. "the AOT-GAN discriminator"); else None."""
        return None

    @classmethod
    def its_own(cls) -> "tuple[str, str]":
        """What :meth:`recognises` says of the family's own generator weights."""
        spec = cls.specs[0]
        return spec.title, f"Choose the model '{spec.name}' for this file."


def patch_detail_share(value, own: int = 0) -> float:
    """The loader option ``patch_detail`` (whole percent 0-100; -1 = ``own``, the weight
    set's) as a share 0..1."""
    from ..settings import SettingsError, _as_int
    pct = _as_int(value, "patch_detail")
    if pct == -1:
        pct = int(own)
    if not 0 <= pct <= 100:
        raise SettingsError(f"patch_detail is a percentage from 0 to 100 (-1: the weights' own), "
                            f"not {value!r}")
    return pct / 100.0


def check_architecture(sd: Mapping, spec: ModelSpec) -> None:
    """Raise ``ArchitectureMismatchError`` unless ``sd`` holds ``spec``'s network, naming what
    the keys are when a registered adapter recognises them."""
    from ..weights import ArchitectureMismatchError
    keys = set(sd.keys())
    own = get_adapter(spec).recognises(keys)
    if own is not None and own[0] == spec.title:
        return
    found = own
    for other in list_models():
        if found is not None:
            break
        adapter = get_adapter(other)
        if issubclass(adapter, TorchAdapter):
            found = adapter.recognises(keys)
    if found is not None:
        raise ArchitectureMismatchError(
            f"this file holds {found[0]} weights, not {spec.title} weights. {found[1]}")
    sample = ", ".join(list(sd.keys())[:3])
    raise ArchitectureMismatchError(
        f"these are not {spec.title} weights (unrecognised keys, e.g. {sample})")
