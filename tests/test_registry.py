"""The model registry: adapters register themselves, listing stays cheap, and an adapter's
checkpoint steps name the model a wrong file belongs to."""
import subprocess
import sys
import textwrap

import pytest

from inpaint_gui.engine import registry
from inpaint_gui.engine.models.base import ModelAdapter, TorchAdapter, check_architecture
from inpaint_gui.engine.registry import ModelSpec
from inpaint_gui.engine.weights import ArchitectureMismatchError


def test_every_adapter_module_registers_its_models_in_order():
    names = [s.name for s in registry.list_models()]
    assert names == ["telea", "ns", "patchmatch", "rfr", "aot", "srn", "lama", "pennet"]
    for spec in registry.list_models():
        adapter = registry.get_adapter(spec.name)
        assert issubclass(adapter, ModelAdapter) and spec in adapter.specs
        # a PyTorch network is named by the spec and loaded by the common TorchAdapter steps
        assert bool(spec.network) == issubclass(adapter, TorchAdapter)
    assert registry.short_title("rfr") == "RFR" and registry.short_title("nosuch") == "nosuch"


def test_listing_models_imports_no_torch():
    code = textwrap.dedent("""
        import sys
        from inpaint_gui.engine import registry
        names = [s.name for s in registry.list_models()]
        assert 'torch' not in sys.modules, 'listing models imported torch'
        print(len(names))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == 8


def test_a_name_cannot_be_registered_by_two_adapters(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    twin = type("Twin", (ModelAdapter,), {"specs": (ModelSpec("aot", "twin", "inpaint", 64),)})
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_model(twin)
    fresh = type("Fresh", (ModelAdapter,), {"specs": (ModelSpec("fresh", "Fresh", "inpaint", 64),)})
    assert registry.register_model(fresh) is fresh and registry.get_adapter("fresh") is fresh
    registry.unregister_model("fresh")
    with pytest.raises(registry.UnknownModelError):
        registry.get_spec("fresh")


def test_a_file_of_another_registered_model_is_named():
    lama_keys = {"model.1.ffc.convl2l.weight": None, "model.5.conv1.ffc.convl2g.weight": None}
    with pytest.raises(ArchitectureMismatchError, match="LaMa .* not AOT-GAN .* 'lama'"):
        check_architecture(lama_keys, registry.get_spec("aot"))
    with pytest.raises(ArchitectureMismatchError, match="unrecognised keys"):
        check_architecture({"conv.weight": None}, registry.get_spec("rfr"))
