"""The model-running GUI inside the main window: run, result layer, accept/discard/undo,
cancel, missing weights, comparison, outpainting, Auto explanation, persistence."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QKeyEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import fakemodels as F  # noqa: E402
from inpaint_gui.engine import registry  # noqa: E402
from inpaint_gui.engine.models.base import ModelAdapter  # noqa: E402
from inpaint_gui.engine.registry import ModelSpec, WeightSet  # noqa: E402
from inpaint_gui.ui import fill_controller as fc  # noqa: E402
from inpaint_gui.ui import worker as worker_mod  # noqa: E402
from inpaint_gui.core.margins import Margins  # noqa: E402

H, W = 48, 64


def _image(seed=3):
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, W, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 12, (H, W, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _rect_mask(y0=14, y1=30, x0=20, x1=40):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


@pytest.fixture
def app_win(qtbot, tmp_path):
    from inpaint_gui.ui.main_window import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(settings)
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    ctl = fc.install(w, worker_mod.FillRunner(warm_up=False))
    assert fc.install(w) is ctl  # idempotent
    w.resize(1000, 700)
    w.document.set_image_data(_image(), name="test")
    return w, ctl


def _wait_finished(qtbot, ctl, start, timeout=30000):
    with qtbot.waitSignal(ctl.runner.finished, timeout=timeout) as blocker:
        start()
    return blocker.args[0]


def test_run_telea_accept_undo_redo(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    before = d.image.copy()
    mask = _rect_mask()
    d.set_mask(mask, "paint")
    n_undo = d.undo_stack.count()
    assert ctl.dock.select_model("telea")
    res = _wait_finished(qtbot, ctl, win.actions["fill_run"].trigger)  # Ctrl+Enter
    assert res.model == "telea"
    p = ctl.pending
    assert p is not None and p.item.scene() is win.canvas.scene()
    assert ctl.result_bar.isVisibleTo(win) and ctl.controls.accept_button.isEnabled()
    keep = mask == 0
    assert np.array_equal(p.entry.image[keep], before[keep])
    assert not np.array_equal(p.entry.image[~keep], before[~keep])
    # listed in the Layers dock; the document itself is untouched until Accept
    assert any("Telea" in win.layers_panel.list.item(i).text()
               for i in range(win.layers_panel.list.count()))
    assert np.array_equal(d.image, before) and d.undo_stack.count() == n_undo
    assert not win.canvas.mask_style()[2]  # mask overlay hidden while the result is shown
    assert "telea" in ctl.dock.status_label.text()

    ctl.controls.accept_button.click()
    assert ctl.pending is None and not ctl.result_bar.isVisibleTo(win)
    assert win.canvas.mask_style()[2]
    after = d.image.copy()
    assert np.array_equal(after[keep], before[keep])
    assert np.array_equal(after[~keep], res.array[~keep])
    assert d.mask_is_empty()
    assert d.undo_stack.count() == n_undo + 1  # ONE undo item
    assert d.results[-1].accepted

    win.undo()
    assert d.image.tobytes() == before.tobytes()
    assert np.array_equal(d.mask, mask) and not d.results[-1].accepted
    win.redo()
    assert np.array_equal(d.image, after) and d.mask_is_empty() and d.results[-1].accepted

    # the next fill starts from the accepted image
    d.set_mask(_rect_mask(2, 10, 2, 10), "paint 2")
    with qtbot.waitSignal(ctl.runner.finished, timeout=30000) as blocker:
        ctl.dock.run_button.click()
    out = blocker.args[0].array
    keep2 = d.mask == 0
    assert np.array_equal(out[keep2], after[keep2])


def test_discard_leaves_image_untouched(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    before = d.image.copy()
    d.set_mask(_rect_mask(), "paint")
    n_undo = d.undo_stack.count()
    ctl.dock.select_model("telea")
    _wait_finished(qtbot, ctl, ctl.dock.request_run)
    assert ctl.pending is not None and len(d.results) == 1
    item = ctl.pending.item
    ctl.controls.discard_button.click()
    assert ctl.pending is None and item.scene() is None
    assert d.image.tobytes() == before.tobytes()
    assert d.undo_stack.count() == n_undo and d.results == []
    assert not d.mask_is_empty()  # the mask stays for another try


def test_result_layer_controls_and_peek(qtbot, app_win):
    win, ctl = app_win
    win.document.set_mask(_rect_mask(), "paint")
    ctl.dock.select_model("ns")
    _wait_finished(qtbot, ctl, ctl.dock.request_run)
    item = ctl.pending.item
    ctl.controls.opacity_slider.setValue(40)
    assert item.layer.opacity == pytest.approx(0.4)
    ctl.controls.split_slider.setValue(50)
    assert item.layer.split == pytest.approx(0.5)
    ctl.controls.show_check.setChecked(False)
    assert not item.layer.visible
    ctl.controls.show_check.setChecked(True)
    press = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Backslash, Qt.KeyboardModifier.NoModifier, "\\")
    QApplication.sendEvent(win.canvas, press)
    assert item.layer.peek
    release = QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Backslash, Qt.KeyboardModifier.NoModifier, "\\")
    QApplication.sendEvent(win.canvas, release)
    assert not item.layer.peek
    # accepting at 40 % opacity blends inside the mask only
    before = win.document.image.copy()
    res = ctl.pending.entry.image
    ctl.accept()
    m = _rect_mask() > 0
    expect = np.clip(np.rint(before.astype(np.float32) * 0.6 + res.astype(np.float32) * 0.4),
                     0, 255).astype(np.uint8)
    assert np.array_equal(win.document.image[m], expect[m])
    assert np.array_equal(win.document.image[~m], before[~m])


def test_cancel_leaves_document_untouched(qtbot, app_win, monkeypatch):
    F.register(monkeypatch, F.Slow)
    win, ctl = app_win
    d = win.document
    image, mask = F.slow_inputs(100)  # a hundred slow windows
    d.set_image_data(image, name="slow")
    before = d.image.copy()
    d.set_mask(mask, "paint")
    n_undo = d.undo_stack.count()
    assert ctl.run(F.slow_settings(delay=0.05))
    qtbot.waitUntil(lambda: ctl.dock.progress_bar.value() > 0, timeout=15000)
    assert ctl.is_running() and win.actions["fill_cancel"].isEnabled()
    assert ctl.dock.cancel_button.isEnabled()
    assert " s" in ctl.dock.status_label.text()  # stage and elapsed time
    with qtbot.waitSignal(ctl.runner.cancelled, timeout=15000):
        ctl.dock.cancel_button.click()
    qtbot.wait(50)
    assert not ctl.is_running() and not win.actions["fill_cancel"].isEnabled()
    assert ctl.pending is None and d.results == []
    assert d.image.tobytes() == before.tobytes() and d.undo_stack.count() == n_undo
    assert "cancelled" in win.statusBar().currentMessage().lower()


@pytest.fixture
def fakenet(monkeypatch, tmp_path):
    spec = ModelSpec(name="fakenet", title="Fake Net", task="inpaint", native_size=256,
                     weight_sets=(WeightSet("official", "official", "fakenet_absent.pth"),))
    monkeypatch.setitem(registry._MODELS, "fakenet", (spec, ModelAdapter))
    return spec


def test_missing_weights_offers_fallback_or_manager(qtbot, app_win, fakenet):
    win, ctl = app_win
    ctl.dock.refresh_models()
    assert ctl.dock.weight_status_text("fakenet") == "missing"
    win.document.set_mask(_rect_mask(), "paint")
    asked = []

    def answer_fallback(msg, kind):
        asked.append((msg, kind))
        return fc.FALLBACK

    ctl.ask_missing_weights = answer_fallback
    assert ctl.dock.select_model("fakenet")
    with qtbot.waitSignal(ctl.runner.finished, timeout=30000) as blocker:
        ctl.dock.request_run()
    assert asked and asked[0][1] == "missing_weights" and "fakenet_absent.pth" in asked[0][0]
    assert blocker.args[0].model == "telea" and ctl.pending is not None
    ctl.discard()

    ctl.ask_missing_weights = lambda msg, kind: fc.MANAGE
    with qtbot.waitSignal(ctl.runner.failed, timeout=30000):
        ctl.dock.request_run()
    qtbot.waitUntil(lambda: ctl.manager_dialog is not None and ctl.manager_dialog.isVisible(),
                    timeout=5000)
    assert ctl.pending is None and not ctl.is_running()  # the app is still alive
    ctl.manager_dialog.close()
    # weights_changed refreshes the dock
    ctl.manager_dialog.weights_changed.emit()
    assert "fakenet" in ctl.dock.model_names()


def test_compare_two_models_then_choose(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    d.set_mask(_rect_mask(), "paint")
    ctl.dock.set_compare_models(["telea", "ns"])
    assert ctl.dock.compare_button.text() == "Compare (2)"
    with qtbot.waitSignal(ctl.runner.compare_finished, timeout=30000):
        ctl.dock.compare_button.click()
    dlg = ctl.compare_dialog
    assert dlg is not None and dlg.isVisible()
    grid = dlg.grid
    assert grid.count() == 2
    labels = grid.labels()
    assert labels[0].startswith("telea") and labels[1].startswith("ns")
    # zoom is shared
    grid.zoom_by(2.0)
    assert all(v.transform().m11() == pytest.approx(grid.zoom()) for v in grid.views())
    grid.choose(1)
    assert not dlg.isVisible()
    assert ctl.pending is not None and ctl.pending.entry.meta["model"] == "ns"
    assert len(d.results) == 1
    before = d.image.copy()
    ctl.accept()
    keep = _rect_mask() == 0
    assert np.array_equal(d.image[keep], before[keep]) and not np.array_equal(d.image, before)


def test_outpaint_accept_changes_canvas_and_undo_restores(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    before = d.image.copy()
    d.set_margins(Margins(0, 8, 4, 0))
    n_undo = d.undo_stack.count()
    ctl.dock.select_model("telea")
    res = _wait_finished(qtbot, ctl, ctl.dock.request_run)
    assert res.array.shape == (H + 4, W + 8, 3)
    p = ctl.pending
    assert p.outpaint and (p.item.pos().x(), p.item.pos().y()) == (-8, 0)
    assert not ctl.controls.opacity_slider.isEnabled()
    ctl.accept()
    assert d.image.shape == (H + 4, W + 8, 3) and d.margins.is_zero()
    assert np.array_equal(d.image[0:H, 8:8 + W], before)
    assert d.undo_stack.count() == n_undo + 1
    win.undo()
    assert d.image.shape == before.shape and d.image.tobytes() == before.tobytes()
    assert d.margins == Margins(0, 8, 4, 0)
    win.redo()
    assert d.image.shape == (H + 4, W + 8, 3)


def test_dragged_border_offers_only_models_that_extend_and_runs_auto(qtbot, app_win):
    """A model trained on holes inside a photo (RFR left a dark fill in a margin) is not
    offered while the canvas is extended; Auto extends with Telea on the new margin, as a
    layered, undoable result, and the inpainting models come back when the margins go."""
    import cv2
    win, ctl = app_win
    d, dock = win.document, ctl.dock
    before = d.image.copy()
    assert dock.select_model("rfr") and dock.is_available("rfr")
    d.set_margins(Margins(0, 0, 0, 16))
    assert dock.selected_model() == "auto"  # moved off RFR
    for name in ("rfr", "aot", "lama", "pennet"):
        assert not dock.is_available(name) and "cannot extend a canvas" in dock.blocked_reason(name)
    for name in ("telea", "ns", "srn"):
        assert dock.is_available(name)
    dock.select_model("rfr")  # picked by hand anyway: Run is refused with the reason
    assert not dock.run_button.isEnabled() and "cannot extend" in dock.unavailable_label.text()
    with qtbot.assertNotEmitted(dock.run_requested):
        dock.request_run()
    dock.select_model("auto")
    qtbot.waitUntil(lambda: "Telea on the new margin" in dock.auto_label.text(), timeout=5000)
    res = _wait_finished(qtbot, ctl, dock.request_run)
    assert res.array.shape == (H, W + 16, 3) and res.model == "telea"
    assert np.array_equal(res.array[:, :W], before)
    canvas = np.zeros((H, W + 16, 3), np.uint16)
    canvas[:, :W] = before.astype(np.uint16) * 257
    margin = np.zeros((H, W + 16), np.uint8)
    margin[:, W:] = 255
    ref = np.dstack([cv2.inpaint(np.ascontiguousarray(canvas[..., c]), margin, 5, cv2.INPAINT_TELEA)
                     for c in range(3)])
    assert np.abs(res.array.astype(int) - np.rint(ref / 257.0).astype(int)).max() <= 1
    assert ctl.pending is not None and ctl.pending.outpaint  # layered over the original
    ctl.accept()
    assert d.image.shape == (H, W + 16, 3)
    win.undo()
    assert d.image.tobytes() == before.tobytes() and d.margins == Margins(0, 0, 0, 16)
    d.undo_stack.undo()  # the margins go: every model is offered again
    assert d.margins.is_zero() and dock.is_available("rfr") and dock.select_model("rfr")


def test_auto_label_follows_mask_and_margins(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    label = ctl.dock.auto_label
    qtbot.waitUntil(lambda: "empty mask" in label.text(), timeout=5000)
    tiny = np.zeros((H, W), np.uint8)
    tiny[10, 10:14] = 255
    d.set_mask(tiny, "dot")
    qtbot.waitUntil(lambda: "small defects" in label.text(), timeout=5000)
    d.set_mask(_rect_mask(5, 45, 5, 60), "big")
    qtbot.waitUntil(lambda: "large hole" in label.text(), timeout=5000)
    assert label.text().startswith("Auto: ")
    d.set_margins(Margins(10, 0, 0, 0))
    qtbot.waitUntil(lambda: "outpaint" in label.text(), timeout=5000)
    d.undo_stack.undo()  # margins back
    d.undo_stack.undo()  # back to the dot
    qtbot.waitUntil(lambda: "small defects" in label.text(), timeout=5000)


def test_auto_run_on_stroke_release(qtbot, app_win):
    win, ctl = app_win
    d = win.document
    ctl.dock.select_model("telea")
    win.actions["fill_auto_run"].trigger()
    assert ctl.dock.auto_run()
    with qtbot.waitSignal(ctl.runner.finished, timeout=30000):
        d.begin_mask_edit()
        d.paint_dabs([(30, 20, 6)], 1.0, False)
        d.end_mask_edit("stroke")
    assert ctl.pending is not None
    # accepting clears the mask: that must not start another run
    ctl.accept()
    assert not ctl.is_running()


def test_menu_and_settings_persist(qtbot, app_win, tmp_path):
    win, ctl = app_win
    titles = [a.text() for a in win.menuBar().actions()]
    assert "M&odels" in titles and titles.index("M&odels") < titles.index("&Help")
    win.actions["models_manage"].trigger()
    assert ctl.manager_dialog is not None and ctl.manager_dialog.isVisible()
    ctl.manager_dialog.close()
    assert win.models_dock is ctl.dock
    ctl.dock.select_model("ns")
    ctl.dock.blend_combo.setCurrentIndex(ctl.dock.blend_combo.findData("poisson"))
    ctl.dock.set_compare_models(["telea", "aot"])
    ctl.dock.set_auto_run(True)
    win.save_settings()

    from inpaint_gui.ui.main_window import MainWindow
    w2 = MainWindow(win.settings)
    qtbot.addWidget(w2)
    ctl2 = fc.install(w2, worker_mod.FillRunner(warm_up=False))
    s = ctl2.dock.settings()
    assert s.model == "ns" and s.blend == "poisson"
    assert ctl2.dock.compare_models() == ["telea", "aot"]
    assert ctl2.dock.auto_run() and w2.actions["fill_auto_run"].isChecked()


def test_new_document_drops_pending_result(qtbot, app_win):
    win, ctl = app_win
    win.document.set_mask(_rect_mask(), "paint")
    ctl.dock.select_model("telea")
    _wait_finished(qtbot, ctl, ctl.dock.request_run)
    item = ctl.pending.item
    win.document.set_image_data(_image(9), name="other")
    assert ctl.pending is None and item.scene() is None
    assert win.document.results == []
    # Run with nothing to fill explains itself instead of running
    assert not ctl.run()
    assert "Paint" in ctl.dock.status_label.text()


def test_notices_reach_the_status_bar_and_results_can_be_reshown(qtbot, app_win):
    win, ctl = app_win
    ctl.runner.notice.emit("telea: out of memory on cuda (crop); retrying with 512 px tiles")
    assert "out of memory" in win.statusBar().currentMessage()
    d = win.document
    d.set_mask(_rect_mask(), "paint")
    ctl.dock.select_model("telea")
    _wait_finished(qtbot, ctl, ctl.dock.request_run)
    entry = ctl.pending.entry
    ctl.accept()
    assert ctl.pending is None and entry.accepted
    # double click in the Layers dock shows a kept result again
    win.layers_panel.result_activated.emit(entry)
    assert ctl.pending is not None and ctl.pending.entry is entry
    ctl.discard()
    assert any(r is entry for r in d.results)  # an accepted result stays listed
