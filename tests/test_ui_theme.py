"""Dark theme: unticked check boxes must stay visible (issue 22, item 11)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QImage, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory  # noqa: E402


@pytest.fixture
def dark_app(qapp):
    """The app's dark theme for one test; the previous style and palette come back after."""
    from inpaint_gui import app as app_mod
    old_style, old_palette = qapp.style().name(), QPalette(qapp.palette())
    app_mod._dark_palette(qapp)
    yield qapp
    qapp.setStyle(QStyleFactory.create(old_style))
    if hasattr(qapp, "_inpaint_dark_style"):
        del qapp._inpaint_dark_style
    qapp.setPalette(old_palette)


def _pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    raw = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return raw[:, : w * 3].reshape(h, w, 3).astype(int)


def _contrast(arr: np.ndarray, background) -> int:
    """Largest per-channel distance of any pixel from the background colour."""
    return int(np.abs(arr - np.array(background)[None, None, :]).max())


def test_unticked_compare_boxes_are_visible_in_the_dark_theme(qtbot, dark_app):
    from inpaint_gui.ui.models_dock import COMPARE_COL, ModelsDock
    dock = ModelsDock()
    qtbot.addWidget(dock)
    dock.resize(380, 520)
    dock.show()
    qtbot.waitExposed(dock)
    tree = dock.tree
    item = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                if tree.topLevelItem(i).data(COMPARE_COL, Qt.ItemDataRole.CheckStateRole)
                is not None)
    assert item.checkState(COMPARE_COL) == Qt.CheckState.Unchecked
    tree.setCurrentItem(None)
    tree.clearSelection()
    rect = tree.visualRect(tree.indexFromItem(item, COMPARE_COL))
    assert rect.width() > 8 and rect.height() > 8
    cell = _pixels(tree.viewport().grab(rect).toImage())
    base = dark_app.palette().color(QPalette.Base)
    # the unticked box's frame stands out from the row (Fusion alone: ~5 grey levels)
    assert _contrast(cell, (base.red(), base.green(), base.blue())) >= 60

    # the same for a plain check box on the panel ("Run on stroke release")
    box = dock.auto_run_check
    assert not box.isChecked()
    indicator = _pixels(box.grab().toImage())[:, :16]
    window = box.palette().color(QPalette.Window)
    assert _contrast(indicator, (window.red(), window.green(), window.blue())) >= 60


def test_dark_theme_keeps_the_check_mark(qtbot, dark_app):
    """Ticked boxes still show their check mark (the frame is drawn over Fusion's box)."""
    from PySide6.QtWidgets import QCheckBox
    a, b = QCheckBox(""), QCheckBox("")
    for w in (a, b):
        qtbot.addWidget(w)
        w.resize(20, 20)
        w.show()
    b.setChecked(True)
    qtbot.waitExposed(b)
    pa, pb = _pixels(a.grab().toImage()), _pixels(b.grab().toImage())
    text = QApplication.palette().color(QPalette.Text)
    bright = lambda arr: int((np.abs(arr - np.array([text.red(), text.green(), text.blue()]))
                              .max(axis=2) < 60).sum())
    assert bright(pb) > bright(pa) + 5  # the check mark's light pixels
