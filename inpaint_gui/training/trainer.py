"""Resumable trainer for RFR-Net, AOT-GAN and SRN (Qt-free).

Run directory layout (``RUN_DIR``)::

    last.pt            full training state (G, D, EMA, optimizers, schedule, step, RNG states),
                       written atomically every ``ckpt_every`` steps, at the end, and on SIGINT/SIGTERM
    run.json           configuration, losses active, data, hardware, timings, last validation
    log.jsonl          one JSON object per line: {"type": "train"|"val"|"event", "step": ..., ...}
    export/<arch>_starter.pt   EMA generator state dict in fp16, keyed exactly as the net's
    export/<arch>_starter.json metadata (variant kwargs = the adapter's WeightSet options)
    export/<arch>_starter.md   model card draft

Determinism: batch ``k`` depends only on ``(seed, k)`` (see :class:`.data.BatchSource`); torch's
global RNG (WGAN-GP interpolation) is saved with the checkpoint; the learning rate is a pure
function of the step. A resumed run therefore continues bitwise like an uninterrupted one
(same device, thread count and torch build).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaint_gui.engine.fsutil import atomic_torch_save, atomic_write_text

from . import data as D
from . import losses as L
from . import masks as M
from .discriminators import AOTDiscriminator, SRNDiscriminator
from .metrics import l1 as l1_metric
from .metrics import psnr as psnr_metric
from .metrics import ssim as ssim_metric

CKPT_FORMAT = "inpaint_gui.train/1"
ARCHS = ("rfr", "aot", "srn")

# Variant name -> keyword arguments of inpaint_gui.engine.nets.create(arch, **kwargs).
VARIANTS: Dict[str, Dict[str, dict]] = {
    # "small" = the starter-weight configuration of each model adapter (WeightSet options);
    # "tiny" = smaller still, for quick experiments and tests.
    "rfr": {
        "official": {},
        "small": dict(kernel_size=5, channels=32, max_channels=256, recurrences=4),
        "tiny": dict(kernel_size=5, channels=16, max_channels=128, recurrences=4,
                     tail_channels=16, tail_planes=4),
    },
    "aot": {
        "official": {},
        "base": dict(channels=32, block_num=8),
        # small grown by two blocks (training.grow): the capacity step a session's repository
        # budget allows (2.9 M parameters, 5.8 MB fp16)
        "medium": dict(channels=32, block_num=6),
        "small": dict(channels=32, block_num=4),
        "tiny": dict(channels=16, block_num=4),
    },
    "srn": {
        "official": {},
        # small widened (training.grow): 1.6 M parameters, 3.2 MB fp16, 1.5x the cost of a
        # small training step; with the AOT-GAN medium snapshot it fits a session's budget
        "medium": dict(cnum=24),
        "base": dict(cnum=32),  # 2.8 M parameters, 5.6 MB fp16, 2.25x the cost
        "small": dict(cnum=16),
        "tiny": dict(cnum=8),
    },
}
# Discriminator base width per variant (official 64).
D_CNUM = {"official": 64, "base": 32, "medium": 32, "small": 32, "tiny": 16}

# Official optimiser settings.
ARCH_DEFAULTS = {
    "rfr": dict(lr=2e-4, betas=(0.9, 0.999), finetune_lr=5e-5, batch=6),
    "aot": dict(lr=1e-4, betas=(0.5, 0.999), batch=8),
    "srn": dict(lr=1e-4, betas=(0.5, 0.9), batch=8),
}


def variant_kwargs(arch: str, variant: str) -> dict:
    arch = arch.lower()
    if arch not in VARIANTS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    table = VARIANTS[arch]
    if variant not in table:
        raise ValueError(f"unknown variant {variant!r} for {arch}; choose one of {', '.join(table)}")
    return dict(table[variant])


def create_generator(arch: str, variant: str = "official", **overrides) -> nn.Module:
    from inpaint_gui.engine import nets
    kw = variant_kwargs(arch, variant)
    kw.update(overrides)
    net = nets.create(arch, **kw)
    # train as the app runs it (RFR: recurrences continue until the hole is covered)
    from inpaint_gui.engine.registry import get_adapter
    get_adapter(arch).model_class.prepare_net(net)
    return net


@dataclass
class TrainConfig:
    arch: str
    data: str
    out: str
    variant: str = "official"
    size: int = 256
    steps: int = 20000
    batch: Optional[int] = None          # None = 4 on CPU, the official batch on CUDA
    lr: Optional[float] = None           # None = official
    d_lr: Optional[float] = None
    device: str = "auto"
    amp: bool = False
    channels_last: Optional[bool] = None  # None = on for CUDA
    vgg: Optional[str] = None
    threads: Optional[int] = None
    workers: int = 2
    seed: int = 0
    schedule: str = "constant"           # constant (official) | cosine
    warmup: int = 0
    min_lr_factor: float = 0.1
    ema_decay: float = 0.999
    val_every: int = 500
    val_count: int = 16
    val_fraction: float = 0.05
    ckpt_every: int = 250
    log_every: int = 10
    cache_mb: int = 1024
    max_minutes: Optional[float] = None
    grad_clip: Optional[float] = None
    # arch specific
    finetune_at: Optional[int] = None    # RFR: step where the BN-frozen fine-tune stage starts
    pretrain_steps: Optional[int] = None  # SRN: steps of the reconstruction-only stage
    d_steps: int = 5                     # SRN: critic steps per generator step (official 5)
    adv_convention: str = "paper"        # AOT SM-PatchGAN labels: paper | official
    jitter: Optional[float] = None       # colour jitter (AOT official 0.05)
    adv_weight: Optional[float] = None   # AOT: weight of the SM-PatchGAN term (official 0.01)
    texture_weight: Optional[float] = None  # AOT: weight of losses.RandomTextureLoss (None/0 = off)
    psnr_weight: Optional[float] = None  # AOT, SRN: weight of losses.log_mse_loss (None/0 = off)
    srn_canvas: str = "fixed"            # SRN reconstruction stage: "fixed" (the official square
    #                                      canvas, half-size window) | "random" | "sided" (see
    #                                      SRNTrainer.random_canvas)
    rewarm: int = 200                    # steps of linear lr re-warm after a snapshot resume
    mask_mix: Optional[str] = None       # training-mask mix (masks.TRAIN_MIXES; default: the arch's)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------------------------
# helpers


def resolve_device(device: str) -> str:
    from inpaint_gui.engine.devices import pick_device
    return pick_device(device)


class EMA:
    """Exponential moving average of a module's floating-point state (params and buffers);
    integer buffers are copied. Decay warms up as min(decay, (1 + n) / (10 + n))."""

    def __init__(self, module: nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for k, v in module.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def load_state_dict(self, sd: dict) -> None:
        for k, v in sd.items():
            self.shadow[k].copy_(v)

    def copy_to(self, module: nn.Module) -> None:
        module.load_state_dict(self.shadow, strict=True)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    st = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = st["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if st.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def hardware_info(device: str) -> dict:
    info = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu"] = platform.processor()
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _to_tensor01(imgs_u8: np.ndarray, device) -> torch.Tensor:
    t = torch.from_numpy(imgs_u8).permute(0, 3, 1, 2).float().div_(255.0)
    return t.to(device)


def _holes_tensor(holes: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(holes.astype(np.float32))[:, None].to(device)


def margins_from_hole(hole: np.ndarray):
    """(top, left, bottom, right) of the known rectangle of an outpainting mask (1 = unknown)."""
    known = hole == 0
    rows = np.nonzero(known.any(1))[0]
    cols = np.nonzero(known.any(0))[0]
    h, w = hole.shape
    return (int(rows[0]), int(cols[0]), h - 1 - int(rows[-1]), w - 1 - int(cols[-1]))


def _set_requires_grad(module: Optional[nn.Module], flag: bool) -> None:
    if module is not None:
        for p in module.parameters():
            p.requires_grad_(flag)


# ----------------------------------------------------------------------------------------------
# architecture-specific training logic


class ArchTrainer:
    """Owns G (and D), the losses and one optimisation step in the official conventions."""

    name = ""
    mask_mix = "inpaint"
    shared_mask = False
    min_size = 16  # smallest --size the networks train at (a multiple of 16)
    jitter = 0.0   # default colour jitter of the training crops

    def __init__(self, cfg: TrainConfig, device: str, vgg=None):
        self.cfg = cfg
        self.device = device
        self.vgg = vgg
        self.net_kwargs = variant_kwargs(self.name, cfg.variant)
        self.G = create_generator(self.name, cfg.variant).to(device)
        self.D: Optional[nn.Module] = None
        d = ARCH_DEFAULTS[self.name]
        self.lr = cfg.lr if cfg.lr is not None else d["lr"]
        self.d_lr = cfg.d_lr if cfg.d_lr is not None else self.lr
        self.betas = d["betas"]
        self.opt_d = None

    def build_optimizers(self):
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        if self.D is not None:
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.d_lr, betas=self.betas)

    # learning rate as a function of the step ------------------------------------------------
    def stage(self, step: int) -> str:
        return "main"

    def base_lrs(self, step: int):
        return self.lr, self.d_lr

    def lr_at(self, step: int):
        g, d = self.base_lrs(step)
        f = 1.0
        cfg = self.cfg
        if cfg.warmup and step < cfg.warmup:
            f = (step + 1) / cfg.warmup
        elif cfg.schedule == "cosine":
            t = min(1.0, max(0.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))
            f = cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        return g * f, d * f

    def apply_lr(self, step: int, factor: float = 1.0) -> float:
        """Set the optimisers' learning rates for ``step`` (times ``factor``, the re-warm after
        a snapshot resume); returns the generator's scheduled rate (without ``factor``)."""
        g, d = self.lr_at(step)
        g_sched = g
        g, d = g * factor, d * factor
        for pg in self.opt_g.param_groups:
            pg["lr"] = g
        if self.opt_d is not None:
            for pg in self.opt_d.param_groups:
                pg["lr"] = d
        return g_sched

    def on_step_start(self, step: int) -> None:
        pass

    def active_losses(self, step: int) -> dict:
        raise NotImplementedError

    def train_step(self, img01: torch.Tensor, hole: torch.Tensor, step: int, amp) -> dict:
        raise NotImplementedError

    @torch.no_grad()
    def predict01(self, G: nn.Module, img01: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _backward_step(self, loss, opt, scaler, params):
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.cfg.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            opt.step()


class RFRTrainer(ArchTrainer):
    name = "rfr"
    mask_mix = "rfr"

    def __init__(self, cfg, device, vgg=None):
        super().__init__(cfg, device, vgg)
        if vgg is not None:
            from .vgg import with_options
            vgg = with_options(vgg, normalize=None, pool="max")  # official: no normalisation
        self.loss = L.RFRLoss(vgg)
        self.finetune_lr = ARCH_DEFAULTS["rfr"]["finetune_lr"] * (self.lr / ARCH_DEFAULTS["rfr"]["lr"])
        self.finetune_at = cfg.finetune_at if cfg.finetune_at is not None else int(round(cfg.steps * 2 / 3))
        cfg.finetune_at = self.finetune_at  # resolved once, kept in the checkpoint's config
        self._ft = None

    def stage(self, step):
        return "finetune" if step >= self.finetune_at else "main"

    def base_lrs(self, step):
        lr = self.finetune_lr if self.stage(step) == "finetune" else self.lr
        return lr, lr

    def on_step_start(self, step):
        ft = self.stage(step) == "finetune"
        if ft != self._ft:
            self._ft = ft
            if hasattr(self.G, "set_finetune"):
                self.G.set_finetune(ft)
            self.G.train()
            if ft:
                for m in self.G.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()

    def active_losses(self, step):
        t = self.loss.active_terms()
        if self.stage(step) == "finetune":
            t = dict(t, **{"(stage) finetune: BatchNorm frozen, lr": self.finetune_lr})
        return t

    def _forward(self, G, img01, hole):
        known = (1.0 - hole).expand(-1, 3, -1, -1)
        out, _ = G(img01 * known, known)
        return out, known

    def train_step(self, img01, hole, step, amp):
        with amp():
            out, known = self._forward(self.G, img01, hole)
        loss, parts = self.loss(out.float(), img01, known)
        self._backward_step(loss, self.opt_g, self.scaler_g, self.G.parameters())
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    @torch.no_grad()
    def predict01(self, G, img01, hole):
        out, _ = self._forward(G, img01, hole)
        return out.float().clamp(0, 1)


class AOTTrainer(ArchTrainer):
    name = "aot"
    mask_mix = "aot"
    min_size = 48  # the generator's smallest side (36 px) rounded up to a multiple of 16
    jitter = 0.05

    def __init__(self, cfg, device, vgg=None):
        super().__init__(cfg, device, vgg)
        self.D = AOTDiscriminator(cnum=D_CNUM.get(cfg.variant, 64)).to(device)
        self.loss = L.AOTLoss(vgg, weights={"texture": cfg.texture_weight or 0.0,
                                            "psnr": cfg.psnr_weight or 0.0}).to(device)
        self.adv = L.SMGANLoss(convention=cfg.adv_convention)
        self.adv_w = L.AOT_WEIGHTS["adv"] if cfg.adv_weight is None else float(cfg.adv_weight)

    def active_losses(self, step):
        t = self.loss.active_terms()
        t[f"sm_patchgan_{self.adv.convention}(71x71,sigma10)"] = self.adv_w
        return t

    def _forward(self, G, img01, hole):
        x = img01 * 2 - 1
        masked = x * (1 - hole) + hole
        pred = G(masked, hole)
        return pred, x

    def train_step(self, img01, hole, step, amp):
        with amp():
            pred, x = self._forward(self.G, img01, hole)
        pred = pred.float()
        comp = (1 - hole) * x + hole * pred
        rec, parts = self.loss(pred, x, hole)
        _set_requires_grad(self.D, False)
        with amp():
            g_fake = self.D(comp)
        g_adv = self.adv.g_loss(g_fake.float(), hole)
        loss_g = rec + self.adv_w * g_adv
        self._backward_step(loss_g, self.opt_g, self.scaler_g, self.G.parameters())
        _set_requires_grad(self.D, True)
        with amp():
            d_fake = self.D(comp.detach())
            d_real = self.D(x)
        d_loss = self.adv.d_loss(d_fake.float(), d_real.float(), hole)
        self._backward_step(d_loss, self.opt_d, self.scaler_d, self.D.parameters())
        out = {"loss": loss_g.detach(), "g_adv": g_adv.detach(), "d_loss": d_loss.detach()}
        out.update({k: v.detach() for k, v in parts.items()})
        return out

    @torch.no_grad()
    def predict01(self, G, img01, hole):
        pred, _ = self._forward(G, img01, hole)
        return ((pred.float() + 1) / 2).clamp(0, 1)


SRN_CANVASES = ("fixed", "random", "sided")
#: ``srn_canvas="sided"``: the share of reconstruction steps on the app's one-sided layout
SIDED_SHARE = 0.5


class SRNTrainer(ArchTrainer):
    """SRN: one known window per batch (official); BGR [-1,1] tensors; pretrain (reconstruction
    only) then fine-tune (+ WGAN-GP global and contextual critics, + ID-MRF or substitute)."""

    name = "srn"
    mask_mix = "srn"
    shared_mask = True

    def __init__(self, cfg, device, vgg=None):
        if cfg.srn_canvas not in SRN_CANVASES:
            raise ValueError(f"unknown srn_canvas {cfg.srn_canvas!r}; choose one of {', '.join(SRN_CANVASES)}")
        super().__init__(cfg, device, vgg)
        self.D = SRNDiscriminator(cfg.size, cnum=D_CNUM.get(cfg.variant, 64)).to(device)
        self.w = dict(L.SRN_WEIGHTS, psnr=cfg.psnr_weight or 0.0)
        self.mrf = L.IDMRFLoss(vgg) if vgg is not None else None
        self.substitute = L.SubstituteLoss() if vgg is None else None
        self.pretrain_steps = cfg.pretrain_steps if cfg.pretrain_steps is not None else int(round(cfg.steps * 0.7))
        cfg.pretrain_steps = self.pretrain_steps
        self.d_steps = max(1, int(cfg.d_steps))
        self._rsv_cache = {}

    def stage(self, step):
        return "pretrain" if step < self.pretrain_steps else "finetune"

    def active_losses(self, step):
        t = {"relative_spatial_variant_l1 (4.2*1.2)": self.w["l1"] * self.w["pretrain_l1_alpha"],
             "ae_l1 (1.2*1.2)": self.w["ae"] * self.w["pretrain_l1_alpha"]}
        if self.w["psnr"]:
            t["log_mse_margin (per-photo PSNR)"] = self.w["psnr"]
        if self.stage(step) == "finetune":
            t["wgan_gp_global+context"] = self.w["adv"]
            t[f"gradient_penalty(lambda)"] = self.w["gp_lambda"]
            t[f"critic_steps_per_g_step"] = self.d_steps
            if self.mrf is not None:
                t[f"id_mrf_{self.mrf.vgg.kind}_conv3_2+2*conv4_2"] = self.w["mrf"]
            else:
                t["substitute(ms_l1+ssim+grad) (for ID-MRF)"] = self.w["substitute"]
        return t

    def _rsv(self, hole):
        key = (tuple(hole.shape[-2:]), self._margins(hole))
        w = self._rsv_cache.get(key)
        if w is None:
            if len(self._rsv_cache) > 64:
                self._rsv_cache.clear()
            w = L.relative_spatial_variant_weight(hole[:1])
            self._rsv_cache[key] = w
        return w

    @staticmethod
    def _margins(hole):
        return margins_from_hole(hole[0, 0].detach().cpu().numpy() > 0.5)

    def _forward(self, G, img01, hole, margins):
        x = (img01 * 2 - 1)[:, [2, 1, 0]]  # BGR [-1, 1]
        t, l, b, r = margins
        H, W = x.shape[-2:]
        known = x[:, :, t:H - b, l:W - r]
        return G(known, (t, l, b, r)), x

    def random_canvas(self, step: int, size: int):
        """(y0, x0, H, W, margins) of a sub-canvas of the size x size crop for ``step`` when
        ``cfg.srn_canvas == "random"``: sides from size/2 to size in steps of 8 (aspect 1:2 to
        2:1), a half-size window (2x canvas per axis: the geometry SRN's feature expansion
        needs) at a random place. The app runs SRN on context windows of any aspect and scale
        within 2x of its native window; the official square-only geometry leaves those unseen.
        ``"sided"``: the same canvases; a share :data:`SIDED_SHARE` of the steps has the window
        on the layout the app gives a one-sided extension (right / bottom / each side of left +
        right), the rest as "random". Deterministic in (seed, step)."""
        rng = np.random.default_rng([int(self.cfg.seed), int(step), 3])
        H = int(rng.integers(size // 16, size // 8 + 1)) * 8
        W = int(rng.integers(size // 16, size // 8 + 1)) * 8
        y0 = int(rng.integers(0, size - H + 1))
        x0 = int(rng.integers(0, size - W + 1))
        h, w = H // 2, W // 2
        t = int(rng.integers(0, (H - h) // 4 + 1)) * 4
        l = int(rng.integers(0, (W - w) // 4 + 1)) * 4
        if self.cfg.srn_canvas == "sided" and rng.random() < SIDED_SHARE:
            # the app's one-sided extension (outpaint.plan_steps: one side of one axis, also each
            # side of a split left + right): the window flush against the other side, centred on
            # the axis that is not extended. Drawn after the random layout's numbers: the canvas
            # of every step and the layout of the other steps are those of "random"
            if rng.random() < 0.5:  # extends x
                t, l = (H - h) // 8 * 4, (W - w) if rng.random() < 0.5 else 0
            else:
                t, l = (H - h) if rng.random() < 0.5 else 0, (W - w) // 8 * 4
        return y0, x0, H, W, (t, l, H - h - t, W - w - l)

    def _critic_mask_small(self, hole):
        return L.max_pool_same(hole, 3)

    def train_step(self, img01, hole, step, amp):
        if self.cfg.srn_canvas != "fixed" and self.stage(step) == "pretrain":  # random | sided
            y0, x0, H, W, margins = self.random_canvas(step, img01.shape[-1])
            img01 = img01[:, :, y0:y0 + H, x0:x0 + W]
            m = torch.from_numpy(M.outpaint_mask(H, W, margins).astype(np.float32))
            hole = m.to(img01.device)[None, None].expand(img01.shape[0], 1, H, W)
        margins = self._margins(hole)
        with amp():
            pred, x = self._forward(self.G, img01, hole, margins)
        pred = pred.float()
        weight = self._rsv(hole)
        rec, parts = L.srn_reconstruction_loss(pred, x, hole, weight, self.w)
        out = {}
        loss_g = rec
        if self.stage(step) == "finetune":
            comp = pred * hole + x * (1 - hole)
            m8 = self._critic_mask_small(hole)
            m8_up = F.interpolate(m8, size=hole.shape[-2:], mode="nearest")
            _set_requires_grad(self.D, True)
            for _ in range(self.d_steps):
                with amp():
                    real_g, real_c = self.D(x, m8)
                    fake_g, fake_c = self.D(comp.detach(), m8)
                d_loss = (fake_g.float() - real_g.float()).mean() + (fake_c.float() - real_c.float()).mean()
                gp = L.wgan_gp_penalty(self.D.global_score, x, comp, hole.expand_as(x)) + \
                    L.wgan_gp_penalty(lambda z: self.D.context_score(z, m8), x, comp, m8_up.expand_as(x))
                d_total = d_loss + self.w["gp_lambda"] * gp
                self._backward_step(d_total, self.opt_d, self.scaler_d, self.D.parameters())
            _set_requires_grad(self.D, False)
            with amp():
                g_g, g_c = self.D(comp, m8)
            g_adv = -(g_g.float().mean() + g_c.float().mean())
            loss_g = loss_g + self.w["adv"] * g_adv
            p01 = ((pred[:, [2, 1, 0]] + 1) / 2)
            i01 = img01
            if self.mrf is not None:
                mrf = self.mrf(p01, i01)
                loss_g = loss_g + self.w["mrf"] * mrf
                out["id_mrf"] = mrf.detach()
            else:
                sub = self.substitute(p01, i01)
                loss_g = loss_g + self.w["substitute"] * sub
                out["substitute"] = sub.detach()
            out.update(g_adv=g_adv.detach(), d_loss=d_loss.detach(), gp=gp.detach())
            _set_requires_grad(self.D, True)
        self._backward_step(loss_g, self.opt_g, self.scaler_g, self.G.parameters())
        out.update(loss=loss_g.detach(), **{k: v.detach() for k, v in parts.items()})
        return out

    @torch.no_grad()
    def predict01(self, G, img01, hole):
        outs = []
        for i in range(img01.shape[0]):
            m = self._margins(hole[i:i + 1])
            pred, _ = self._forward(G, img01[i:i + 1], hole[i:i + 1], m)
            outs.append(((pred.float()[:, [2, 1, 0]] + 1) / 2).clamp(0, 1))
        return torch.cat(outs)


ARCH_TRAINERS = {"rfr": RFRTrainer, "aot": AOTTrainer, "srn": SRNTrainer}


def srn_val_masks(n: int, size: int) -> "list[np.ndarray]":
    """Validation windows compatible with SRN's expansion ratio 4: half-size windows at fixed spots."""
    h = size // 2 // 4 * 4
    spots = [(size // 4 // 4 * 4, size // 4 // 4 * 4), (0, 0), (size - h, size - h), (0, size - h)]
    out = []
    for i in range(n):
        t, l = spots[i % len(spots)]
        out.append(M.outpaint_mask(size, size, (t, l, size - h - t, size - h - l)))
    return out


# ----------------------------------------------------------------------------------------------
# the trainer


def check_size(arch: str, size: int):
    """Raise ValueError unless training crops of ``size`` px suit ``arch``; returns its spec."""
    from inpaint_gui.engine.registry import get_spec
    spec = get_spec(arch)
    least = ARCH_TRAINERS[arch].min_size
    if size < least:
        raise ValueError(f"{spec.title} needs --size >= {least}")
    step = math.lcm(16, spec.pad_mod)  # training crops are multiples of 16 (and of the net's)
    if size % step:
        raise ValueError(f"{spec.title} needs --size divisible by {step}")
    return spec


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, log: Optional[Callable[[str], None]] = print,
                 snapshot: "Optional[dict]" = None):
        """``resume``: continue RUN_DIR/last.pt (full state). ``snapshot``: start from a compact
        programme snapshot instead (:func:`.programme.read_snapshot`: EMA weights, step,
        curve; the optimisers start fresh and re-warm over ``cfg.rewarm`` steps; see
        :meth:`load_snapshot`)."""
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.log_fn = log or (lambda s: None)
        self.resume = resume
        self.snapshot = snapshot
        self.rewarm_from: Optional[int] = None
        self.on_checkpoint: Optional[Callable[["Trainer"], None]] = None
        self._stop = threading.Event()
        self._stop_reason = None
        self.step = 0
        self.elapsed = 0.0
        self.val_history = []
        self._setup()

    # ------------------------------------------------------------------ setup
    def _setup(self):
        cfg = self.cfg
        if cfg.arch not in ARCHS:
            raise ValueError(f"unknown arch {cfg.arch!r}; choose one of {', '.join(ARCHS)}")
        variant_kwargs(cfg.arch, cfg.variant)
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
            try:
                import cv2
                cv2.setNumThreads(1)
            except Exception:  # pragma: no cover
                pass
        self.device = resolve_device(cfg.device)
        cuda = self.device.startswith("cuda")
        if cfg.batch is None:
            cfg.batch = ARCH_DEFAULTS[cfg.arch]["batch"] if cuda else 4
        spec = check_size(cfg.arch, cfg.size)
        arch_cls = ARCH_TRAINERS[cfg.arch]
        from inpaint_gui.engine.devices import cpu_has_native_bf16
        cpu_bf16 = self.device == "cpu" and cpu_has_native_bf16()
        # channels-last spares oneDNN a reorder around every convolution (CPU and CUDA alike)
        self.channels_last = (cuda or cpu_bf16) if cfg.channels_last is None else bool(cfg.channels_last)
        # CPU autocast only where bf16 is native (AVX512-BF16 / AMX): emulated bf16 is slower than fp32
        self.amp_enabled = bool(cfg.amp) and (cuda or cpu_bf16)
        if cfg.amp and not self.amp_enabled:
            self.log_fn("note: --amp needs CUDA or a CPU with native bf16; training in fp32")
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % (2 ** 32))
        random.seed(cfg.seed)

        self.vgg = None
        self.vgg_info = None
        if cfg.vgg:
            from .vgg import load_vgg
            self.vgg = load_vgg(cfg.vgg, device=self.device)
            self.vgg_info = {"path": str(cfg.vgg), "kind": self.vgg.kind}

        self.train_files, self.val_files = D.split_files(cfg.data, cfg.val_fraction)
        self.arch = arch_cls(cfg, self.device, self.vgg)
        if self.channels_last:
            self.arch.G.to(memory_format=torch.channels_last)
            if self.arch.D is not None:
                self.arch.D.to(memory_format=torch.channels_last)
        self.arch.build_optimizers()
        self.arch.scaler_g = self.arch.scaler_d = None
        if self.amp_enabled and cuda and not torch.cuda.is_bf16_supported():  # fp16 needs loss scaling
            self.arch.scaler_g = torch.amp.GradScaler("cuda")
            self.arch.scaler_d = torch.amp.GradScaler("cuda") if self.arch.D is not None else None
        self.ema = EMA(self.arch.G, cfg.ema_decay) if cfg.ema_decay and cfg.ema_decay > 0 else None
        self.G_eval = create_generator(cfg.arch, cfg.variant).to(self.device).eval()

        outpaint = spec.task == "outpaint"
        if outpaint:
            mask_fn = lambda h, w, rng: M.random_outpaint_mask(h, w, rng, mode="srn")  # noqa: E731
        else:
            sampler = M.MaskSampler(cfg.mask_mix or self.arch.mask_mix)
            mask_fn = sampler
        jitter = cfg.jitter if cfg.jitter is not None else arch_cls.jitter
        self.batches = D.BatchSource(self.train_files, cfg.size, cfg.batch, cfg.seed, mask_fn,
                                     cache_mb=cfg.cache_mb, jitter=jitter,
                                     shared_mask=self.arch.shared_mask, workers=cfg.workers)
        names, imgs = D.validation_set(self.val_files, cfg.size, cfg.val_count)
        self.val_names = names
        self.val_imgs = imgs
        if outpaint:
            self.val_masks = np.stack(srn_val_masks(len(imgs), cfg.size)) if len(imgs) else None
        else:
            self.val_masks = np.stack(M.fixed_val_masks(len(imgs), cfg.size)) if len(imgs) else None

        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = self.out / "last.pt"
        if self.resume:
            if not self.ckpt_path.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint at {self.ckpt_path}")
            self.load(self.ckpt_path)
        elif self.snapshot is not None:
            self.load_snapshot(self.snapshot)
        elif self.ckpt_path.exists():
            raise FileExistsError(f"{self.ckpt_path} exists: pass --resume to continue that run, "
                                  "or choose another --out")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        a = self.arch
        return {
            "format": CKPT_FORMAT,
            "step": self.step,
            "arch": self.cfg.arch,
            "variant": self.cfg.variant,
            "net_kwargs": a.net_kwargs,
            "config": self.cfg.to_dict(),
            "G": a.G.state_dict(),
            "D": a.D.state_dict() if a.D is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": a.opt_g.state_dict(),
            "opt_d": a.opt_d.state_dict() if a.opt_d is not None else None,
            "scaler_g": a.scaler_g.state_dict() if a.scaler_g is not None else None,
            "scaler_d": a.scaler_d.state_dict() if a.scaler_d is not None else None,
            "schedule": {"kind": self.cfg.schedule, "warmup": self.cfg.warmup, "lr": a.lr, "d_lr": a.d_lr,
                         "min_lr_factor": self.cfg.min_lr_factor, "stage": a.stage(self.step)},
            "rng": _rng_state(),
            "elapsed": self.elapsed,
            "val_history": self.val_history,
        }

    def save(self, path: Optional[Path] = None) -> Path:
        path = Path(path or self.ckpt_path)
        atomic_torch_save(self.state_dict(), path)
        return path

    def load(self, path: Path) -> None:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
        if ck.get("format") != CKPT_FORMAT:
            raise ValueError(f"{path} is not a training checkpoint of this program")
        if ck["arch"] != self.cfg.arch or ck["variant"] != self.cfg.variant:
            raise ValueError(f"{path} is a {ck['arch']}/{ck['variant']} run, not {self.cfg.arch}/{self.cfg.variant}")
        a = self.arch
        a.G.load_state_dict(ck["G"])
        if a.D is not None and ck.get("D") is not None:
            own = a.D.state_dict()
            bad = [k for k, v in ck["D"].items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
            if bad:
                raise ValueError(f"the discriminator in {path} does not fit --size {self.cfg.size} "
                                 f"({bad[0]}); resume with the run's original size")
            a.D.load_state_dict(ck["D"])
        if self.ema is not None and ck.get("ema") is not None:
            self.ema.load_state_dict(ck["ema"])
        a.opt_g.load_state_dict(ck["opt_g"])
        if a.opt_d is not None and ck.get("opt_d") is not None:
            a.opt_d.load_state_dict(ck["opt_d"])
        if a.scaler_g is not None and ck.get("scaler_g"):
            a.scaler_g.load_state_dict(ck["scaler_g"])
        if a.scaler_d is not None and ck.get("scaler_d"):
            a.scaler_d.load_state_dict(ck["scaler_d"])
        self.step = int(ck["step"])
        self.elapsed = float(ck.get("elapsed", 0.0))
        self.val_history = list(ck.get("val_history") or [])
        _set_rng_state(ck["rng"])

    def load_snapshot(self, snap: dict) -> None:
        """Start from a programme snapshot (:func:`.programme.read_snapshot`): generator and
        EMA from the fp16 EMA weights (strict), the discriminator when it fits, the step, curve
        and time so far; the learning rate re-warms from here."""
        st = snap["state"]
        cfg = self.cfg
        if st["arch"] != cfg.arch or st["variant"] != cfg.variant:
            raise ValueError(f"the snapshot is a {st['arch']}/{st['variant']} programme, "
                             f"not {cfg.arch}/{cfg.variant}")
        a = self.arch
        g = {k: v.float() if v.dtype.is_floating_point else v for k, v in snap["G"].items()}
        a.G.load_state_dict(g, strict=True)
        if self.ema is not None:
            self.ema.load_state_dict(g)
        if a.D is not None and snap.get("D") is not None:
            own = a.D.state_dict()
            d = {k: v.float() if v.dtype.is_floating_point else v for k, v in snap["D"].items()}
            if set(d) == set(own) and all(tuple(d[k].shape) == tuple(own[k].shape) for k in d):
                a.D.load_state_dict(d, strict=True)
            else:
                self.log_fn("note: the snapshot's discriminator does not fit this phase; it starts afresh")
        self.step = int(st["step"])
        self.elapsed = float(st.get("elapsed_s", 0.0))
        self.val_history = list(st.get("curve") or [])
        self.rewarm_from = self.step
        # torch's own RNG (WGAN-GP interpolation) from (seed, step): reproducible on any machine
        torch.manual_seed(int(np.random.default_rng([int(cfg.seed), self.step, 7]).integers(0, 2 ** 62)))

    # ------------------------------------------------------------------ logging
    def _log_json(self, rec: dict) -> None:
        rec = dict(rec, time=_dt.datetime.now().isoformat(timespec="seconds"))
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, default=_json_default) + "\n")

    def metadata(self, status: str = "running") -> dict:
        cfg = self.cfg
        return {
            "status": status,
            "arch": cfg.arch,
            "variant": cfg.variant,
            "net_kwargs": self.arch.net_kwargs,
            "params_G": sum(p.numel() for p in self.arch.G.parameters()),
            "params_D": sum(p.numel() for p in self.arch.D.parameters()) if self.arch.D is not None else 0,
            "config": cfg.to_dict(),
            "step": self.step,
            "stage": self.arch.stage(self.step),
            "losses_active": self.arch.active_losses(self.step),
            "losses_by_stage": self._losses_by_stage(),
            "vgg": self.vgg_info,
            "data": {"root": str(cfg.data), "train_files": len(self.train_files),
                     "val_files": len(self.val_files), "val_used": self.val_names, "size": cfg.size},
            "hardware": hardware_info(self.device),
            "amp": self.amp_enabled,
            "channels_last": self.channels_last,
            "elapsed_s": round(self.elapsed, 1),
            "last_val": self.val_history[-1] if self.val_history else None,
        }

    def _losses_by_stage(self) -> dict:
        out = {}
        seen = set()
        for s in (0, self.cfg.steps - 1):
            st = self.arch.stage(max(0, s))
            if st not in seen:
                seen.add(st)
                out[st] = self.arch.active_losses(max(0, s))
        return out

    def write_metadata(self, status: str = "running") -> None:
        atomic_write_text(self.out / "run.json",
                          json.dumps(self.metadata(status), indent=2, default=_json_default),
                          parents=True)

    # ------------------------------------------------------------------ validation
    def _autocast(self):
        if not self.amp_enabled:
            return contextlib.nullcontext()
        if self.device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def eval_generator(self) -> nn.Module:
        """The EMA generator (or the raw one without EMA), in eval mode."""
        if self.ema is not None:
            self.ema.copy_to(self.G_eval)
        else:
            self.G_eval.load_state_dict(self.arch.G.state_dict())
        return self.G_eval.eval()

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if self.val_masks is None or not len(self.val_imgs):
            return None
        G = self.eval_generator()
        t0 = time.time()
        preds = []
        bs = max(1, min(8, self.cfg.batch))
        for i in range(0, len(self.val_imgs), bs):
            img = _to_tensor01(self.val_imgs[i:i + bs], self.device)
            hole = _holes_tensor(self.val_masks[i:i + bs], self.device)
            with self._autocast():
                p = self.arch.predict01(G, img, hole)
            comp = p * hole + img * (1 - hole)
            preds.append((comp.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
        preds = np.concatenate(preds)
        ps, ss, ls = [], [], []
        for pred, gt, hole in zip(preds, self.val_imgs, self.val_masks):
            ps.append(psnr_metric(pred, gt))
            ss.append(ssim_metric(pred, gt))
            ls.append(l1_metric(pred, gt))
        finite = [p for p in ps if math.isfinite(p)]
        res = {"step": self.step, "psnr": float(np.mean(finite)) if finite else float("inf"),
               "ssim": float(np.mean(ss)), "l1": float(np.mean(ls)), "n": len(ps),
               "hole_ratio": float(self.val_masks.mean()), "ema": self.ema is not None,
               "seconds": round(time.time() - t0, 2)}
        self.val_history.append(res)
        self._log_json(dict(res, type="val"))
        return res

    # ------------------------------------------------------------------ loop
    def rewarm_factor(self, step: int) -> float:
        """Learning-rate factor after a snapshot resume: Adam's moments start from zero, so the
        rate ramps linearly from 0.1x to 1x over ``cfg.rewarm`` steps; 1 otherwise."""
        if self.rewarm_from is None or not self.cfg.rewarm:
            return 1.0
        t = (step - self.rewarm_from + 1) / float(self.cfg.rewarm)
        return 1.0 if t >= 1.0 else 0.1 + 0.9 * max(0.0, t)

    def request_stop(self, reason: str = "stop requested") -> None:
        self._stop_reason = reason
        self._stop.set()

    @contextlib.contextmanager
    def _signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {}

        def handler(signum, frame):
            self.request_stop(signal.Signals(signum).name)

        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                old[s] = signal.signal(s, handler)
            except (ValueError, OSError):  # pragma: no cover
                pass
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run(self, until: Optional[int] = None) -> dict:
        """Train up to ``until`` (default: cfg.steps) steps in total; returns a summary.

        Stops early (checkpoint written) on SIGINT/SIGTERM, :meth:`request_stop` or
        ``max_minutes``. Exports the EMA generator when the last step is reached or on a stop.
        """
        cfg = self.cfg
        end = cfg.steps if until is None else min(until, cfg.steps)
        self.write_metadata("running")
        self._log_json({"type": "event", "event": "resume" if self.resume else "start", "step": self.step,
                        "device": self.device, "threads": torch.get_num_threads()})
        self.log_fn(f"[train] {cfg.arch}/{cfg.variant} on {self.device}: {len(self.train_files)} train / "
                    f"{len(self.val_files)} val images, {cfg.size}px, batch {cfg.batch}, step {self.step} -> {end}; "
                    f"losses: {', '.join(self.arch.active_losses(self.step))}")
        t_start = time.time()
        window = []
        status = "running"
        self.arch.G.train()
        if self.arch.D is not None:
            self.arch.D.train()
        last_ckpt = self.step
        with self._signals():
            while self.step < end:
                if self._stop.is_set():
                    status = "interrupted"
                    break
                if cfg.max_minutes and (time.time() - t_start) / 60.0 >= cfg.max_minutes:
                    status = "time limit"
                    break
                t0 = time.time()
                step = self.step
                self.arch.on_step_start(step)
                lr = self.arch.apply_lr(step, self.rewarm_factor(step))
                imgs, holes = self.batches.batch(step)
                img = _to_tensor01(imgs, self.device)
                hole = _holes_tensor(holes, self.device)
                if self.channels_last:
                    img = img.contiguous(memory_format=torch.channels_last)
                    hole = hole.contiguous(memory_format=torch.channels_last)
                parts = self.arch.train_step(img, hole, step, self._autocast)
                if self.ema is not None:
                    self.ema.update(self.arch.G, step)
                self.step += 1
                dt = time.time() - t0
                self.elapsed += dt
                # keep the losses as tensors until the log line: float() on a CUDA tensor
                # waits for the GPU, once per step and loss term otherwise
                window.append(parts)
                if self.step % cfg.log_every == 0 or self.step == end:
                    avg = {k: float(torch.stack([w[k].detach().float().reshape(()) for w in window if k in w]).mean())
                           for k in window[-1]}
                    rec = {"type": "train", "step": self.step, "lr": lr, "stage": self.arch.stage(step),
                           "sec_per_step": round(dt, 4), "images_per_s": round(cfg.batch / max(dt, 1e-9), 3),
                           **{k: round(v, 6) for k, v in avg.items()}}
                    self._log_json(rec)
                    self.log_fn(f"[train] step {self.step}/{end} loss {avg['loss']:.4f} "
                                f"({', '.join(f'{k} {v:.4g}' for k, v in avg.items() if k != 'loss')}) "
                                f"{dt:.2f}s/step")
                    window = []
                if cfg.val_every and self.step % cfg.val_every == 0:
                    v = self.validate()
                    if v:
                        self.log_fn(f"[val] step {self.step}: PSNR {v['psnr']:.2f} SSIM {v['ssim']:.4f} "
                                    f"L1 {v['l1']:.4f}")
                if cfg.ckpt_every and self.step - last_ckpt >= cfg.ckpt_every:
                    self.save()
                    last_ckpt = self.step
                    self.write_metadata("running")
                    if self.on_checkpoint is not None:
                        self.on_checkpoint(self)
            else:
                status = "finished" if self.step >= cfg.steps else "paused"
        if not self.val_history or self.val_history[-1]["step"] != self.step:
            v = self.validate()
            if v:
                self.log_fn(f"[val] step {self.step}: PSNR {v['psnr']:.2f} SSIM {v['ssim']:.4f} L1 {v['l1']:.4f}")
        self.save()
        self._log_json({"type": "event", "event": status, "step": self.step,
                        "reason": self._stop_reason})
        export = None
        if status in ("finished", "interrupted", "time limit"):
            export = self.export(status=status)
        self.write_metadata(status)
        self.log_fn(f"[train] {status} at step {self.step}; checkpoint {self.ckpt_path}"
                    + (f"; exported {export}" if export else ""))
        return {"status": status, "step": self.step, "checkpoint": str(self.ckpt_path),
                "export": str(export) if export else None,
                "last_val": self.val_history[-1] if self.val_history else None}

    def close(self):
        self.batches.close()

    # ------------------------------------------------------------------ export
    def export(self, status: str = "finished") -> Path:
        """Write export/<arch>_starter.pt (fp16 EMA generator), .json metadata and .md card."""
        from .evaluate import model_card
        G = self.eval_generator()
        sd = {k: (v.detach().to("cpu").half() if v.dtype.is_floating_point else v.detach().to("cpu"))
              for k, v in G.state_dict().items()}
        # self-check: strict load into a fresh network of the same variant
        from inpaint_gui.engine.weights import load_into
        check = create_generator(self.cfg.arch, self.cfg.variant)
        load_into(check, sd, model_name=f"{self.cfg.arch}/{self.cfg.variant}")
        exp = self.out / "export"
        pt = exp / f"{self.cfg.arch}_starter.pt"
        atomic_torch_save(sd, pt)
        meta = self.metadata(status)
        from inpaint_gui.engine.weights import sha256_file
        meta["file"] = pt.name
        meta["sha256"] = sha256_file(pt)
        meta["weight_set_options"] = self.arch.net_kwargs
        atomic_write_text(exp / f"{self.cfg.arch}_starter.json",
                          json.dumps(meta, indent=2, default=_json_default), parents=True)
        atomic_write_text(exp / f"{self.cfg.arch}_starter.md", model_card(meta), parents=True)
        self._log_json({"type": "event", "event": "export", "step": self.step, "path": str(pt)})
        return pt


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def read_checkpoint_config(out: "str | Path") -> Optional[dict]:
    """The TrainConfig dict stored in RUN_DIR/last.pt (None if there is no checkpoint)."""
    p = Path(out) / "last.pt"
    if not p.is_file():
        return None
    ck = torch.load(str(p), map_location="cpu", weights_only=True)
    return dict(ck.get("config") or {})


def train(cfg: TrainConfig, resume: bool = False, log=print, until: Optional[int] = None) -> dict:
    tr = Trainer(cfg, resume=resume, log=log)
    try:
        return tr.run(until=until)
    finally:
        tr.close()
