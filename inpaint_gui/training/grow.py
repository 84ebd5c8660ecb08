"""Function-preserving growth of a trained generator: a programme that flattens short of its
goal for lack of capacity continues in a larger variant without losing what it learned.

AOT-GAN (``deepen_aot``): new AOT blocks are put in front of the trained ones, each set to the
identity. The middle's input is the encoder's ReLU output (>= 0), so a block whose four dilated
branches copy their quarter of the channels through the centre tap (ReLU leaves them as they
are) and whose ``fuse`` copies the concatenation back gives ``out == x``; the block returns
``x * (1 - gate) + out * gate == x`` whatever its gate. The grown network computes what the
trained one did (up to float rounding) and the new blocks learn from there.

SRN (``widen_srn``): every layer gets the wider variant's channels. The trained channels keep
their weights and read nothing from the new ones (zero weights); the new channels start from
the fresh network's initialisation and read everything; the output layer reads only the trained
channels. ELU, the context normalisation and the clipping are per channel, so the trained
channels compute what they did. The zero weights get gradients at once (their inputs, the new
channels, are not zero), so the new width is used from the first step. The feature expansion's
NHWC reshape interleaves sub-pixel slots and channels: its outputs are mapped slot by slot.
"""
from __future__ import annotations

import re
from typing import Dict

import torch

_MIDDLE = re.compile(r"^middle\.(\d+)\.(.+)$")


def deepen_aot(sd: Dict[str, torch.Tensor], block_num: int, rates=(1, 2, 4, 8),
               seed: int = 0) -> Dict[str, torch.Tensor]:
    """Return an AOT-GAN state dict with ``block_num`` blocks computing the same function as
    ``sd``: ``block_num - n`` identity blocks first, then ``sd``'s blocks renumbered. The new
    blocks' gates get the default convolution initialisation (seeded), which the identity makes
    irrelevant until the branches move. Tensors keep ``sd``'s dtype."""
    from inpaint_gui.engine.models.aot import AOT
    n = AOT.detected_options(sd, sd).get("block_num", 0)  # the loader's own reading of the tensors
    if n == 0:
        raise ValueError("not an AOT-GAN generator state dict (no middle.* blocks)")
    if block_num < n:
        raise ValueError(f"cannot deepen {n} blocks to {block_num}")
    add = block_num - n
    ref = sd["middle.0.fuse.1.weight"]
    dim, dtype = int(ref.shape[0]), ref.dtype
    if dim % len(rates):
        raise ValueError(f"{dim} channels do not split into {len(rates)} branches")
    q = dim // len(rates)
    g = torch.Generator().manual_seed(int(seed))
    new: Dict[str, torch.Tensor] = {}
    for b in range(add):
        p = f"middle.{b}."
        for i in range(len(rates)):
            w = torch.zeros(q, dim, 3, 3)
            w[torch.arange(q), i * q + torch.arange(q), 1, 1] = 1.0
            new[p + f"block{i:02d}.1.weight"] = w.to(dtype)
            new[p + f"block{i:02d}.1.bias"] = torch.zeros(q, dtype=dtype)
        w = torch.zeros(dim, dim, 3, 3)
        w[torch.arange(dim), torch.arange(dim), 1, 1] = 1.0
        new[p + "fuse.1.weight"] = w.to(dtype)
        new[p + "fuse.1.bias"] = torch.zeros(dim, dtype=dtype)
        bound = 1.0 / (dim * 9) ** 0.5  # nn.Conv2d's default (Kaiming-uniform) range, seeded
        new[p + "gate.1.weight"] = torch.empty(dim, dim, 3, 3).uniform_(-bound, bound, generator=g).to(dtype)
        new[p + "gate.1.bias"] = torch.empty(dim).uniform_(-bound, bound, generator=g).to(dtype)
    # the key order of a freshly built network: encoder, middle by block, decoder
    out: Dict[str, torch.Tensor] = {}
    placed = False
    for k, v in sd.items():
        m = _MIDDLE.match(k)
        if m and not placed:
            out.update(new)
            placed = True
        out[f"middle.{int(m.group(1)) + add}.{m.group(2)}" if m else k] = v
    return out


def widen_srn(sd: Dict[str, torch.Tensor], cnum: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Return an SRN state dict of base width ``cnum`` computing the same function as ``sd``
    (see the module docstring). Tensors keep ``sd``'s dtype."""
    from inpaint_gui.engine.nets import srn
    opts = srn.infer_options(sd)
    old = srn.create(**opts)
    old.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    if cnum < old.cnum:
        raise ValueError(f"cannot widen SRN from cnum {old.cnum} to {cnum}")
    torch.manual_seed(int(seed))  # the new channels' initialisation (the module's own)
    new = srn.create(cnum=cnum, expand_ratio=old.expand_ratio)
    dtype = next(iter(sd.values())).dtype

    def conv(net, name):
        m = getattr(net, name)
        return getattr(m, m._conv_name) if isinstance(m, srn.UpConv) else m

    out: Dict[str, torch.Tensor] = {}

    def copy(name, in_map, out_map):
        """Weights of layer ``name``: old channel ``i`` in / ``o`` out sit at ``in_map[i]`` /
        ``out_map[o]`` of the new layer; returns ``out_map`` (the next layer's ``in_map``)."""
        a, b = conv(old, name), conv(new, name)
        w, bias = b.weight.detach().clone(), b.bias.detach().clone()
        w[out_map] = 0.0
        w[out_map[:, None], in_map[None, :]] = a.weight.detach()
        bias[out_map] = a.bias.detach()
        key = next(k for k, mod in new.named_modules() if mod is b)
        out[key + ".weight"], out[key + ".bias"] = w.to(dtype), bias.to(dtype)
        return out_map

    rgb = torch.arange(3)
    in_map = rgb
    for name in old._fen:
        in_map = copy(name, in_map, torch.arange(conv(old, name).out_channels))
    c_old, c_new, r = old._fe_channels, new._fe_channels, old.expand_ratio
    # reshape of NHWC (h, w, c*r) -> (H, W, c): fe channel s*c + k lands in slot s as channel k
    fe_map = torch.cat([s_ * c_new + torch.arange(c_old) for s_ in range(r)])
    copy("feat_expansion_subpixel", in_map, fe_map)
    in_map = torch.cat([torch.arange(c_old), c_new + torch.arange(4)])  # [x_fe, rgb, unknown]
    for name in old._enc + old._dec:
        in_map = copy(name, in_map, torch.arange(conv(old, name).out_channels))
    copy("allconv17", in_map, rgb)
    missing = set(new.state_dict()) - set(out)
    if missing:
        raise RuntimeError(f"SRN widening left {sorted(missing)} out")
    return {k: out[k] for k in new.state_dict()}


def grow_state_dict(arch: str, src: dict, dst: dict, sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Grow generator ``sd`` built with constructor options ``src`` into one built with ``dst``
    (the same function). Supported: AOT-GAN with the same width and rates and more blocks;
    SRN with a larger ``cnum``."""
    if arch == "aot":
        from inpaint_gui.engine.nets.aot import OFFICIAL
        a, b = dict(OFFICIAL, **src), dict(OFFICIAL, **dst)
        if a["channels"] == b["channels"] and tuple(a["rates"]) == tuple(b["rates"]) \
                and b["block_num"] >= a["block_num"]:
            return deepen_aot(sd, int(b["block_num"]), rates=tuple(a["rates"]))
    if arch == "srn":
        official = {"cnum": 64, "expand_ratio": 4}
        a, b = dict(official, **src), dict(official, **dst)
        if b["cnum"] >= a["cnum"] and dict(a, cnum=0) == dict(b, cnum=0):
            return widen_srn(sd, int(b["cnum"]))
    raise ValueError(f"no function-preserving growth of {arch} from {src} to {dst} "
                     "(supported: AOT-GAN with the same width and more blocks; SRN wider)")
