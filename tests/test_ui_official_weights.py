"""Models → Get official weights… (issue 22, item 10)."""
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from inpaint_gui.engine import weight_store as S  # noqa: E402
from inpaint_gui.engine import weights as W  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tinyweights as T  # noqa: E402


@pytest.fixture
def dialog(qtbot, monkeypatch):
    T.install_spec(monkeypatch)
    from inpaint_gui.ui.official_weights import OfficialWeightsDialog
    dlg = OfficialWeightsDialog()
    qtbot.addWidget(dlg)
    dlg.confirm = lambda title, text: pytest.fail(f"unexpected question: {text}")
    return dlg


def _texts(widget):
    return "\n".join(lab.text() for lab in widget.findChildren(QLabel))


def test_every_official_checkpoint_is_listed_with_source_file_size_and_sha256(dialog):
    official = S.official_weights()
    assert set(dialog.rows) == {(o.model, o.weight_set.name) for o in official}
    text = _texts(dialog)
    for o in official:
        row = dialog.rows[(o.model, o.weight_set.name)]
        assert row.import_button.text() == "Import\u2026" and row.import_button.isEnabled()
        for url in o.urls:
            assert f'href="{url}"' in text
        assert f"<code>{o.filename}</code>" in text
        assert o.size in text
    assert "sha256: not published" in text
    assert "about 1 kB" in text  # the tiny set's size
    assert dialog.status_text("aot", "places2") == "Not installed"
    assert str(W.user_models_dir()) in dialog.folder_label.text()


def test_import_verifies_installs_and_says_so(dialog, qtbot, tmp_path):
    dl = T.save(tmp_path / "gen_00042.pth")
    asked = []
    dialog.choose_file = lambda info: (asked.append(info.weight_set.name), str(dl))[1]
    with qtbot.waitSignal(dialog.weights_changed, timeout=10000):
        dialog.rows[("tinynet", "free")].import_button.click()
    assert asked == ["free"]
    dest = W.user_models_dir() / "tinynet_free.pth"
    assert dest.read_bytes() == dl.read_bytes()
    assert not dialog.last_error and "Imported" in dialog.last_message
    assert dialog.status_text("tinynet", "free").startswith("Installed")


def test_import_refuses_a_bad_file_and_keeps_an_existing_one(dialog, qtbot, tmp_path):
    first = T.save(tmp_path / "first.pth", seed=1)
    second = T.save(tmp_path / "second.pth", seed=2)
    assert dialog.import_for("tinynet", "free", str(first))
    dest = W.user_models_dir() / "tinynet_free.pth"
    # a damaged download: refused, nothing replaced, nothing asked
    cut = tmp_path / "cut.pth"
    cut.write_bytes(first.read_bytes()[:200])
    assert not dialog.import_for("tinynet", "free", str(cut))
    assert dialog.last_error and "incomplete" in dialog.last_message
    assert dest.read_bytes() == first.read_bytes()
    # a different good file: asks first; No keeps the installed one
    questions = []
    dialog.confirm = lambda title, text: (questions.append(text), False)[1]
    assert not dialog.import_for("tinynet", "free", str(second))
    assert questions and "tinynet_free.pth already exists" in questions[0]
    assert dest.read_bytes() == first.read_bytes() and "kept the existing" in dialog.last_message
    dialog.confirm = lambda title, text: True
    assert dialog.import_for("tinynet", "free", str(second))
    assert dest.read_bytes() == second.read_bytes()


def test_model_card_opens_from_the_package_data(dialog, qtbot):
    button = dialog.card_buttons["aot"]
    button.click()
    card = dialog._card_windows[-1]
    qtbot.addWidget(card)
    text = card.card_view.toPlainText()
    assert "AOT-GAN" in text and "G0000000.pt" in text
    assert str(W.BUNDLED_DIR) in button.toolTip()


def test_models_menu_opens_it_and_an_import_refreshes_the_models_panel(qtbot, tmp_path,
                                                                      monkeypatch):
    T.install_spec(monkeypatch)
    from inpaint_gui.ui import fill_controller
    from inpaint_gui.ui.main_window import MainWindow
    from inpaint_gui.ui.models_dock import WEIGHTS_COL
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(w, before_close_func=lambda w: w.document.mark_clean())
    ctl = fill_controller.install(w)
    act = w.actions["models_official"]
    assert act in w.menus["models"].actions()
    act.trigger()
    dlg = ctl.official_dialog
    assert dlg is not None and dlg.isVisible()

    def weights_cell():
        tree = ctl.dock.tree
        for i in range(tree.topLevelItemCount()):
            if tree.topLevelItem(i).text(0) == "Tiny Net":
                return tree.topLevelItem(i).text(WEIGHTS_COL)
        return None
    assert weights_cell() == "missing"
    assert dlg.import_for("tinynet", "free", str(T.save(tmp_path / "dl.pth")))
    assert weights_cell() == "official"
    # the model manager offers the same dialog
    mgr = ctl.open_model_manager()
    dlg.hide()
    mgr.official_button.click()
    assert dlg.isVisible()
