"""A tiny registered model with official weight sets, for weight-store tests (no real
network download or large file needed)."""
import hashlib

from inpaint_gui.engine import registry
from inpaint_gui.engine.models.base import InpaintModel, TorchAdapter
from inpaint_gui.engine.registry import ModelSpec, WeightSet

SOURCE = "https://example.org/tiny (README 'Pretrained'): https://example.org/dl/tiny_gen.pth"


def create(width=4):
    import torch
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.Conv2d(width, 3, 1))


class TinyAdapter(TorchAdapter):
    """Loads :func:`create` networks through the common adapter steps."""

    net_options = ("width",)

    @classmethod
    def build_net(cls, spec, width=4):
        return create(width)

    @classmethod
    def wrap(cls, spec, net, device, precision, options):
        model = InpaintModel(spec)
        model.net = net
        return model


def register(monkeypatch, spec: ModelSpec) -> ModelSpec:
    """Register ``spec`` with :class:`TinyAdapter` for the test's duration."""
    adapter = type("Tiny", (TinyAdapter,), {"specs": (spec,)})
    monkeypatch.setitem(registry._MODELS, spec.name, (spec, adapter))
    return spec


def save(path, width=4, seed=0, wrap=True):
    import torch
    torch.manual_seed(seed)
    sd = create(width).state_dict()
    torch.save({"state_dict": sd} if wrap else sd, path)
    return path


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def install_spec(monkeypatch, pinned_sha: str = "0" * 64) -> ModelSpec:
    """Register 'tinynet' with an unpinned official set ('free'), a sha256-pinned one
    ('pinned') and a starter-style small variant."""
    spec = ModelSpec(name="tinynet", title="Tiny Net", task="inpaint", native_size=64,
                     description="a test network", weight_sets=(
                         WeightSet("free", "official", "tinynet_free.pth", source=SOURCE,
                                   licence="MIT", training_data="nothing at all",
                                   size="about 1 kB"),
                         WeightSet("pinned", "official", "tinynet_pinned.pth", source=SOURCE,
                                   licence="MIT", training_data="pinned data", sha256=pinned_sha),
                         WeightSet("small", "starter", "tinynet_small.pth",
                                   options=(("width", 2),), variant="small")))
    return register(monkeypatch, spec)
