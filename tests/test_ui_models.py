"""Models dock, model manager, result layer and comparison grid."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QImage, QKeyEvent, QPainter  # noqa: E402
from PySide6.QtWidgets import QGraphicsScene  # noqa: E402

from inpaint_gui.engine import registry, weight_store, weights  # noqa: E402
from inpaint_gui.engine.auto import AutoChoice  # noqa: E402
from inpaint_gui.engine.registry import ModelSpec, WeightSet  # noqa: E402
from inpaint_gui.engine.settings import RunSettings  # noqa: E402
from inpaint_gui.ui import model_manager as mm  # noqa: E402
from inpaint_gui.ui.compare import CompareGrid  # noqa: E402
from inpaint_gui.ui.models_dock import COMPARE_COL, ModelsDock  # noqa: E402
from inpaint_gui.core.result import ResultLayer  # noqa: E402
from inpaint_gui.ui.result_layer import PeekKeyFilter, ResultControls, ResultItem  # noqa: E402
from inpaint_gui.ui.worker import FillResult  # noqa: E402
import tinyweights  # noqa: E402


# ================================================================== models dock

def test_dock_lists_models_and_emits_run(qtbot):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    names = dock.model_names()
    assert names[0] == "auto" and "telea" in names and "ns" in names
    assert dock.weight_status_text("telea") == "built-in"
    for spec in registry.list_models():
        assert spec.name in names
        if spec.needs_weights:
            assert dock.weight_status_text(spec.name) in ("starter", "official", "imported", "missing")

    assert dock.select_model("telea")
    dock.strategy_combo.setCurrentIndex(dock.strategy_combo.findData("tile"))
    dock.tile_size.setValue(256)
    dock.tile_overlap.setValue(32)
    dock.blend_combo.setCurrentIndex(dock.blend_combo.findData("feather"))
    dock.blend_radius.setValue(5)
    dock.device_combo.setCurrentIndex(dock.device_combo.findData("cpu"))
    with qtbot.waitSignal(dock.run_requested, timeout=1000) as blocker:
        dock.run_button.click()
    s = blocker.args[0]
    assert isinstance(s, RunSettings)
    assert s.model == "telea" and s.weights is None and not s.model_strategy
    assert (s.strategy.name, s.strategy.tile_size, s.strategy.tile_overlap) == ("tile", 256, 32)
    assert (s.blend, s.blend_radius, s.device, s.precision) == ("feather", 5, "cpu", "fp32")

    with qtbot.waitSignal(dock.cancel_requested, timeout=1000):
        dock.set_running(True)
        dock.cancel_button.click()
    dock.set_progress("window 1/2", 0.5, 1.25)
    assert dock.progress_bar.value() == 500 and "window 1/2" in dock.status_label.text()
    dock.finish("telea · 0.3 s")
    assert not dock.cancel_button.isEnabled() and dock.progress_bar.value() == 1000


def test_dock_compare_and_auto_reason(qtbot):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    assert not dock.compare_button.isEnabled()
    for name in ("telea", "ns"):
        dock.item_for(name).setCheckState(COMPARE_COL, Qt.CheckState.Checked)
    assert dock.compare_models() == ["telea", "ns"] and dock.compare_button.isEnabled()
    with qtbot.waitSignal(dock.compare_requested, timeout=1000) as blocker:
        dock.compare_button.click()
    assert [s.model for s in blocker.args[0]] == ["telea", "ns"]

    dock.select_model("auto")
    dock.set_auto_choice(AutoChoice("telea", "small defects: the classical fill is instant"))
    assert "instant" in dock.auto_label.text() and "telea" in dock.item_for("auto").text(0)
    assert dock.settings().model == "auto"


def test_dock_state_roundtrip(qtbot, tmp_path):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    dock.select_model("ns")
    dock.precision_combo.setCurrentIndex(dock.precision_combo.findData("bf16"))
    dock.set_auto_run(True)
    qs = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dock.save_state(qs)
    qs.sync()
    other = ModelsDock()
    qtbot.addWidget(other)
    other.restore_state(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert other.settings() == dock.settings() and other.auto_run()


# ================================================================== model manager

@pytest.fixture
def tiny_spec(monkeypatch):
    spec = ModelSpec(name="tinynet", title="Tiny Net", task="inpaint", native_size=64,
                     weight_sets=(
                         WeightSet("official", "official", "tinynet_official.pth", source="https://example.org/tiny",
                                   licence="MIT", sha256="0" * 64),
                         WeightSet("imported", "imported", "tinynet_imported.pth"),
                         WeightSet("small", "starter", "tinynet_small.pth", options=(("width", 2),),
                                   variant="small")))
    return tinyweights.register(monkeypatch, spec)


def _only_tiny(monkeypatch):
    specs = {s.name: s for s in registry.list_models() if s.name in ("telea", "ns", "tinynet")}
    monkeypatch.setattr(registry, "list_models", lambda task=None: list(specs.values()))


def test_manager_rejects_non_checkpoint(qtbot, tmp_path, tiny_spec):
    bad = tmp_path / "notes.pth"
    bad.write_text("this is not a checkpoint")
    dlg = mm.ModelManagerDialog()
    qtbot.addWidget(dlg)
    assert dlg.import_file(bad) is False
    assert dlg.last_error and "notes.pth: not a PyTorch checkpoint" in dlg.last_message
    assert not any(weights.user_models_dir().glob("*.pth"))
    assert dlg.import_file(tmp_path / "absent.pth") is False and "does not exist" in dlg.last_message


def test_manager_imports_valid_state_dict_and_removes_it(qtbot, tmp_path, tiny_spec, monkeypatch):
    import torch
    _only_tiny(monkeypatch)
    good = tmp_path / "my_tinynet.pth"
    torch.save({"state_dict": tinyweights.create(4).state_dict()}, good)
    wrong = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)

    dlg = mm.ModelManagerDialog()
    qtbot.addWidget(dlg)
    assert dlg.find_items("Tiny Net")
    assert dlg.import_file(wrong) is False and "fits none" in dlg.last_message

    with qtbot.waitSignal(dlg.weights_changed, timeout=5000):
        assert dlg.import_file(good) is True, dlg.last_message
    dest = weights.user_models_dir() / "tinynet_imported.pth"  # official slot is sha-pinned
    assert dest.is_file() and "Tiny Net" in dlg.last_message
    assert weights.weight_status(tiny_spec)[0] == "imported"

    small = tmp_path / "small.pth"
    torch.save(tinyweights.create(2).state_dict(), small)
    assert dlg.import_file(small, "tinynet") is True
    assert (weights.user_models_dir() / "tinynet_small.pth").is_file()

    # a file named like the sha-pinned official set must be that exact file
    fake_official = tmp_path / "tinynet_official.pth"
    torch.save(tinyweights.create(4).state_dict(), fake_official)
    assert dlg.import_file(fake_official) is False and "sha256" in dlg.last_message

    # replacing needs confirmation
    other = tmp_path / "again.pth"
    torch.save(tinyweights.create(4).state_dict(), other)
    dlg.confirm = lambda title, text: False
    assert dlg.import_file(other) is False and "kept the existing" in dlg.last_message

    asked = []
    dlg.confirm = lambda title, text: asked.append(text) or True
    assert dlg.select_path(dest)
    assert dlg.remove_button.isEnabled()
    assert dlg.remove_selected() is True and asked and not dest.exists()
    assert weights.weight_status(tiny_spec)[0] == "starter"


def test_manager_import_real_registry_model(qtbot, tmp_path):
    """A tiny state dict of a real registry model (a small variant) is detected and installed."""
    import torch
    from inpaint_gui.engine import nets
    candidates = [(spec, ws) for spec in registry.list_models() for ws in spec.weight_sets
                  if spec.needs_weights and ws.options]
    assert candidates, "the registry lost every small weight-set variant"
    spec, ws = candidates[0]
    net = nets.create(spec.network, **dict(ws.options))
    assert sum(p.numel() for p in net.parameters()) <= 5_000_000  # a quick test
    path = tmp_path / f"{spec.name}_mine.pth"
    torch.save(net.state_dict(), path)
    check = weight_store.import_weight_file(path)
    assert check.spec.name == spec.name and check.target.is_file()
    assert weights.weight_status(spec)[2] is not None


# ================================================================== result layer

def _render(scene, w, h):
    img = QImage(w, h, QImage.Format.Format_RGB888)
    img.fill(0)
    p = QPainter(img)
    scene.render(p, target=img.rect().toRectF(), source=scene.sceneRect())
    p.end()
    return img


def test_result_item_split_visibility_and_peek(qtbot):
    res = np.full((20, 40, 3), 255, np.uint8)
    layer = ResultLayer(np.zeros_like(res), res)
    scene = QGraphicsScene(0, 0, 40, 20)
    item = ResultItem(layer)
    scene.addItem(item)
    assert _render(scene, 40, 20).pixelColor(5, 10).red() == 255
    item.set_split(0.5)
    img = _render(scene, 40, 20)
    assert img.pixelColor(5, 10).red() == 0 and img.pixelColor(35, 10).red() == 255
    item.set_split(0.0)
    item.set_result_opacity(0.5)
    assert abs(_render(scene, 40, 20).pixelColor(5, 10).red() - 128) <= 2

    filt = PeekKeyFilter(item)
    press = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Backslash, Qt.KeyboardModifier.NoModifier)
    release = QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Backslash, Qt.KeyboardModifier.NoModifier)
    assert filt.eventFilter(None, press) and layer.peek
    assert _render(scene, 40, 20).pixelColor(30, 10).red() == 0
    assert filt.eventFilter(None, release) and not layer.peek

    controls = ResultControls()
    qtbot.addWidget(controls)
    controls.bind(item)
    controls.show_check.setChecked(False)
    assert not layer.visible and item.visible_rect().isEmpty()
    controls.opacity_slider.setValue(30)
    controls.split_slider.setValue(25)
    assert layer.opacity == pytest.approx(0.3) and layer.split == pytest.approx(0.25)
    with qtbot.waitSignal(controls.accept_requested, timeout=1000):
        controls.accept_button.click()


# ================================================================== comparison grid

def test_compare_grid_sync_and_choose(qtbot):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, (300, 400, 3), dtype=np.uint8) for _ in range(3)]
    results = [FillResult("telea", "default", arrays[0], 0.12), FillResult("ns", "default", arrays[1], 0.5),
               FillResult("aot", "official", arrays[2], 2.25),
               FillResult("rfr", "default", None, 0.0, error="no weights", error_kind="missing_weights")]
    grid = CompareGrid()
    qtbot.addWidget(grid)
    grid.resize(600, 500)
    grid.show()
    grid.set_results(results, original=arrays[0])
    qtbot.waitExposed(grid)
    assert grid.count() == 4
    labels = grid.labels()
    assert labels[0] == "telea · default · 0.1 s" and labels[2] == "aot · official · 2.2 s"
    assert "failed" in labels[3]

    grid.set_zoom(3.0)
    assert all(abs(v.transform().m11() - 3.0) < 1e-9 for v in grid.views())
    v0, v1 = grid.views()[0], grid.views()[1]
    v0.horizontalScrollBar().setValue(v0.horizontalScrollBar().maximum() // 2)
    v0.verticalScrollBar().setValue(17)
    pos = grid.scroll_positions()
    assert len(set(pos)) == 1 and pos[0][1] == 17
    grid.zoom_by(1.25, v1, QPointF(10, 10))
    assert all(abs(v.transform().m11() - 3.75) < 1e-9 for v in grid.views())
    assert len(set(grid.scroll_positions())) == 1

    with qtbot.waitSignal(grid.chosen, timeout=1000) as blocker:
        grid.choose(2)
    assert blocker.args == [2] and grid.selected_index() == 2
    with qtbot.assertNotEmitted(grid.chosen):
        grid.choose(3)  # failed results cannot be chosen
