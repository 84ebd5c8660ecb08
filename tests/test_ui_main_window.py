"""Main window: files (open/save/project/mask), confirmations, close prompt, settings."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from inpaint_gui.core.margins import Margins  # noqa: E402


class Dialogs:
    """Scripted answers for the window's dialog hooks (records every question)."""

    def __init__(self, win):
        self.save_paths, self.open_paths, self.answers = [], [], []
        self.questions, self.errors, self.save_calls = [], [], 0
        win.ask_save_path = self.ask_save_path
        win.ask_open_path = lambda caption, flt: self.open_paths.pop(0)
        win.ask_question = self.ask_question
        win.show_error = lambda title, text: self.errors.append(text)

    def ask_save_path(self, caption, suggested, flt):
        self.save_calls += 1
        self.suggested = suggested
        return self.save_paths.pop(0)

    def ask_question(self, title, text, buttons, default):
        self.questions.append(text)
        if not self.answers:
            raise AssertionError(f"unexpected question: {text}")
        return self.answers.pop(0)


@pytest.fixture
def win(qtbot, tmp_path):
    from inpaint_gui.ui.main_window import MainWindow
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(settings)
    w.dialogs = Dialogs(w)
    # pytest-qt closes the window at teardown: never prompt then
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    w.resize(900, 600)
    return w


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    p = tmp_path / "photo.png"
    cv2.imwrite(str(p), img[..., ::-1])
    return str(p), img


def paint_something(win):
    d = win.document
    d.begin_mask_edit()
    d.paint_dabs([(20, 20, 5)], 1.0, False)
    d.end_mask_edit("stroke")


def test_open_and_recent_files(win, photo, tmp_path):
    path, img = photo
    assert win.open_path(path)
    assert np.array_equal(win.document.image, img)
    assert win.recent_files()[0] == os.path.abspath(path)
    assert "photo.png" in win.windowTitle()
    # settings went to the temporary file, not the user's
    win.settings.sync()
    assert (tmp_path / "settings.ini").exists()


def test_open_bad_file_shows_error(win, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert not win.open_path(str(bad))
    assert win.dialogs.errors and win.document.is_empty()


def test_16bit_image_stays_16bit(win, tmp_path):
    img = (np.random.default_rng(2).integers(0, 65535, (20, 30, 3))).astype(np.uint16)
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), img[..., ::-1])
    assert win.open_path(str(p))
    assert win.document.image.dtype == np.uint16
    assert np.array_equal(win.document.image, img)
    assert "16-bit" in win.info_label.text()


def test_save_never_overwrites_original_without_confirmation(win, photo):
    path, img = photo
    original = open(path, "rb").read()
    win.open_path(path)
    paint_something(win)
    dl = win.dialogs
    # first Ctrl+S asks where; the user picks the original file and answers No
    dl.save_paths.append(path)
    dl.answers.append(QMessageBox.No)
    assert not win.save_result()
    assert dl.save_calls == 1 and "ORIGINAL" in dl.questions[-1]
    assert open(path, "rb").read() == original
    assert win.document.result_path is None
    # suggested name never is the original
    assert os.path.abspath(dl.suggested) != os.path.abspath(path)


def test_ctrl_s_asks_first_time_then_saves_silently(win, photo, tmp_path):
    path, img = photo
    win.open_path(path)
    dl = win.dialogs
    out = str(tmp_path / "result.png")
    dl.save_paths.append(out)
    assert win.save_result()
    assert dl.save_calls == 1 and os.path.exists(out)
    assert np.array_equal(cv2.imread(out)[..., ::-1], img)
    # second time: no dialog, no question (it is our own output file)
    assert win.save_result()
    assert dl.save_calls == 1 and dl.questions == []
    # Save As onto another existing file asks first
    other = str(tmp_path / "other.png")
    open(other, "wb").write(b"keep me")
    dl.save_paths.append(other)
    dl.answers.append(QMessageBox.No)
    assert not win.save_result_as()
    assert open(other, "rb").read() == b"keep me"
    dl.save_paths.append(other)
    dl.answers.append(QMessageBox.Yes)
    assert win.save_result_as()
    assert cv2.imread(other) is not None


def test_overwriting_original_after_yes_still_asks_each_time(win, photo):
    path, img = photo
    win.open_path(path)
    dl = win.dialogs
    dl.save_paths.append(path)
    dl.answers.append(QMessageBox.Yes)
    assert win.save_result()
    dl.answers.append(QMessageBox.No)
    assert not win.save_result()  # Ctrl+S onto the original asks again
    assert dl.save_calls == 1 and len(dl.questions) == 2


def test_close_with_unsaved_changes_prompts(win, photo, tmp_path):
    path, _ = photo
    win.open_path(path)
    win.show()
    paint_something(win)
    assert win.isWindowModified()
    dl = win.dialogs
    dl.answers.append(QMessageBox.Cancel)
    assert not win.close()
    assert win.isVisible() and len(dl.questions) == 1
    # Save -> asks for a project path, saves, closes
    proj = str(tmp_path / "work.inpaint")
    dl.answers.append(QMessageBox.Save)
    dl.save_paths.append(proj)
    assert win.close()
    assert os.path.exists(proj)


def test_close_discard(win, photo):
    win.open_path(photo[0])
    win.show()
    paint_something(win)
    win.dialogs.answers.append(QMessageBox.Discard)
    assert win.close()


def test_open_other_file_with_unsaved_changes_prompts(win, photo, tmp_path):
    win.open_path(photo[0])
    paint_something(win)
    p2 = tmp_path / "b.png"
    cv2.imwrite(str(p2), np.zeros((5, 5, 3), np.uint8))
    win.dialogs.answers.append(QMessageBox.Cancel)
    assert not win.open_path(str(p2))
    assert win.document.image.shape == (60, 80, 3)


def test_project_round_trip_through_window(win, photo, tmp_path):
    path, img = photo
    win.open_path(path)
    paint_something(win)
    win.document.set_margins((3, 4, 5, 6))
    mask = win.document.mask.copy()
    proj = str(tmp_path / "p.inpaint")
    win.dialogs.save_paths.append(proj)
    assert win.save_project()
    assert not win.document.is_modified()
    win.document.set_image_data(np.zeros((2, 2, 3), np.uint8))
    assert win.open_path(proj)
    d = win.document
    assert np.array_equal(d.image, img) and np.array_equal(d.mask, mask)
    assert d.margins == Margins(3, 4, 5, 6)
    assert d.source_path == os.path.abspath(path)
    # saving the project again goes to the same file without asking
    paint_something(win)
    assert win.save_project() and win.dialogs.save_calls == 1


def test_mask_export_import(win, photo, tmp_path):
    win.open_path(photo[0])
    paint_something(win)
    mask = win.document.mask.copy()
    out = str(tmp_path / "m.png")
    win.dialogs.save_paths.append(out)
    assert win.export_mask_dialog()
    assert np.array_equal(cv2.imread(out, cv2.IMREAD_UNCHANGED), mask)
    win.document.mask_operation("clear")
    win.dialogs.open_paths.append(out)
    assert win.import_mask_dialog()
    assert np.array_equal(win.document.mask, mask)
    # alpha of an RGBA image: transparent = fill
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[10:20, 30:40, 3] = 0
    ap = str(tmp_path / "alpha.png")
    cv2.imwrite(ap, rgba)
    win.dialogs.open_paths.append(ap)
    assert win.import_mask_dialog(use_alpha=True)
    exp = np.zeros((60, 80), np.uint8)
    exp[10:20, 30:40] = 255
    assert np.array_equal(win.document.mask, exp)


def test_paste_and_drop(win, photo):
    img = QImage(30, 20, QImage.Format_RGB32)
    img.fill(Qt.red)
    QGuiApplication.clipboard().setImage(img)
    assert win.paste()
    d = win.document
    assert d.image.shape == (20, 30, 3) and tuple(d.image[0, 0]) == (255, 0, 0)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(photo[0])])
    ev = QDropEvent(QPointF(10, 10), Qt.CopyAction, md, Qt.LeftButton, Qt.NoModifier)
    win.canvas.dropEvent(ev)
    assert d.image.shape == (60, 80, 3)


def test_window_state_and_tool_settings_persist(qtbot, tmp_path):
    from inpaint_gui.ui.main_window import MainWindow
    ini = str(tmp_path / "s.ini")
    w = MainWindow(QSettings(ini, QSettings.IniFormat))
    qtbot.addWidget(w)
    w.tool_settings.brush_size = 123
    w.tool_settings.pressure_size = False
    w.close()
    w2 = MainWindow(QSettings(ini, QSettings.IniFormat))
    qtbot.addWidget(w2)
    assert w2.tool_settings.brush_size == 123 and w2.tool_settings.pressure_size is False
    assert QSettings(ini, QSettings.IniFormat).value("window/state") is not None


def test_plugin_points(win):
    from PySide6.QtWidgets import QLabel
    dock = win.add_dock(QLabel("x"), "Extra", name="extra_dock")
    assert win.docks["extra_dock"] is dock
    md = win.set_models_panel(QLabel("models"))
    assert md is win.models_dock and md.objectName() == "models_dock"
    assert set(win.menus) >= {"file", "edit", "view", "mask", "canvas", "tools"}


def test_shortcut_actions(win, photo):
    win.open_path(photo[0])
    s = win.tool_settings
    s.brush_size = 20
    win.actions["brush_bigger"].trigger()
    assert s.brush_size == 23
    win.actions["brush_smaller"].trigger()
    assert s.brush_size == 20
    win.actions["tool_eraser"].trigger()
    assert win.canvas.tool.name == "eraser"
    win.actions["swap_brush"].trigger()
    assert win.canvas.tool.name == "brush"
    win.actions["mask_fill"].trigger()
    assert win.document.mask.all()
    win.actions["mask_invert"].trigger()
    assert not win.document.mask.any()
    win.actions["undo"].trigger()
    assert win.document.mask.all()


def _crash(autosaver) -> None:
    """What the system does when the process dies: the session's lock is released, the
    recovery file stays."""
    os.close(autosaver._lock_fd)
    autosaver._lock_fd = None


def test_crash_recovery_autosave(qtbot, tmp_path, photo):
    from inpaint_gui.ui.main_window import MainWindow
    rdir = str(tmp_path / "recovery")
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), recovery_dir=rdir)
    qtbot.addWidget(w, before_close_func=lambda w: w.document.mark_clean())
    Dialogs(w)
    w.open_path(photo[0])
    assert not w.autosave_now(wait=True)          # nothing unsaved yet
    paint_something(w)
    assert w.autosave_now(wait=True)
    assert os.path.exists(w.autosaver.path)
    assert not w.autosave_now(wait=True)          # no new change since
    mask = w.document.mask.copy()
    # a second window does not offer the file of a session that is still running
    w2 = MainWindow(QSettings(str(tmp_path / "s2.ini"), QSettings.IniFormat), recovery_dir=rdir)
    qtbot.addWidget(w2, before_close_func=lambda w: w.document.mark_clean())
    dl = Dialogs(w2)
    offered = []
    w2.ask_recovery = lambda items: (offered.append([i.path for i in items]), items[0])[1]
    assert not w2.check_recovery() and offered == []
    # "crash": the first session's lock goes away with its process; its file is offered
    lost = w.autosaver.path
    _crash(w.autosaver)
    assert w2.check_recovery()
    assert offered == [[lost]]
    d2 = w2.document
    assert np.array_equal(d2.mask, mask) and d2.is_modified() and d2.project_path is None
    assert d2.source_path == os.path.abspath(photo[0])
    w2.autosaver.wait()
    assert os.path.exists(w2.autosaver.path) and not os.path.exists(lost)
    # saving the project removes the recovery file
    proj = str(tmp_path / "rec.inpaint")
    dl.save_paths.append(proj)
    assert w2.save_project()
    assert not os.path.exists(w2.autosaver.path)
    # the first window's own file goes away when its work is discarded on close
    paint_something(w)
    assert w.autosave_now(wait=True) and os.path.exists(w.autosaver.path)
    w.dialogs = Dialogs(w)
    w.dialogs.answers.append(QMessageBox.Discard)
    assert w.close()
    assert not os.path.exists(w.autosaver.path)
    assert not os.path.exists(w.autosaver.lock_path)


def test_undo_mid_stroke_and_result_accepted_mid_stroke(win, photo):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    from inpaint_gui.core.project import ResultEntry
    win.open_path(photo[0])
    win.show()
    d, c = win.document, win.canvas
    vp = c.viewport()
    pt = lambda x, y: QPoint(*(round(v) for v in (c.map_from_scene_f(QPointF(x, y)).x(),
                                                   c.map_from_scene_f(QPointF(x, y)).y())))
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, pt(10, 10))
    QTest.mouseMove(vp, pt(40, 30))
    assert d.mask.any()
    c.setFocus()
    QTest.keyClick(c, Qt.Key_Z, Qt.ControlModifier)  # Ctrl+Z while painting drops the stroke
    assert not d.mask.any() and not c.tool.active
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, pt(40, 30))
    assert d.undo_stack.count() == 0
    # a result accepted while painting ends the stroke cleanly
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, pt(10, 10))
    QTest.mouseMove(vp, pt(40, 30))
    d.accept_result(ResultEntry(image=np.zeros((60, 80, 3), np.uint8), name="r"))
    assert not c.tool.active and not d.mask.any()
    QTest.mouseMove(vp, pt(50, 50))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, pt(50, 50))
    assert not d.mask.any() and d.undo_stack.count() == 1
    d.undo_stack.undo()
    assert np.array_equal(d.image, photo[1])


def test_mask_visibility_stays_in_sync(win, photo):
    win.open_path(photo[0])
    win.actions["show_mask"].trigger()
    assert not win.canvas.mask_item.isVisible()
    assert not win.mask_panel.visible.isChecked()
    win.mask_panel.visible.setChecked(True)
    assert win.actions["show_mask"].isChecked() and win.canvas.mask_item.isVisible()


@pytest.fixture
def isolated_app_settings(tmp_path, monkeypatch):
    """app.main's global Qt state, put back afterwards: its QSettings() goes to a temporary
    folder, and the organisation and application names it sets do not leak into later
    tests (nor does its huge-page request into the environment of later torch imports)."""
    from PySide6.QtCore import QCoreApplication
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("INPAINT_HUGE_PAGES", "0")
    probe = QSettings(QSettings.IniFormat, QSettings.UserScope, "probe", "probe").fileName()
    default_dir = os.path.dirname(os.path.dirname(probe))
    names = QCoreApplication.organizationName(), QCoreApplication.applicationName()
    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        QSettings.setPath(fmt, QSettings.UserScope, str(tmp_path / "cfg"))
    yield
    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        QSettings.setPath(fmt, QSettings.UserScope, default_dir)
    QCoreApplication.setOrganizationName(names[0])
    QCoreApplication.setApplicationName(names[1])


def test_app_main_opens_the_image_from_the_command_line(qtbot, tmp_path, photo, monkeypatch,
                                                        isolated_app_settings):
    from PySide6.QtWidgets import QApplication

    from inpaint_gui import app as app_mod
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    monkeypatch.setattr(app_mod, "_dark_palette", lambda app: None)
    # the window main() builds, taken where it is built: looking for it among the
    # application's top-level widgets depended on what earlier tests had left there
    created = []
    install = app_mod._install_models_gui
    monkeypatch.setattr(app_mod, "_install_models_gui",
                        lambda win: (created.append(win), install(win))[1])
    assert app_mod.main([photo[0]]) == 0
    assert len(created) == 1
    w = created[0]
    qtbot.addWidget(w, before_close_func=lambda w: w.document.mark_clean())
    qtbot.waitUntil(lambda: not w.document.is_empty(), timeout=20000)  # cold start in a fresh clone
    assert np.array_equal(w.document.image, photo[1])
    assert w.autosaver.folder == str(tmp_path / "data" / "inpaint-gui" / "recovery")


@pytest.mark.parametrize("size", [(1366, 768), (1400, 900), (1920, 1080)])
def test_first_start_shows_run_progress_and_status_without_scrolling(win, qtbot, size):
    """The Models panel is sized to its content on first start: Run and the progress bar are
    in view, and where the window has room the run's status line (under a four-line Auto
    reason) and all the tool options below too."""
    from PySide6.QtCore import QPoint

    from inpaint_gui import app as app_mod
    app_mod._install_models_gui(win)
    dock = win.models_dock
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(50)  # the second sizing pass runs once the window is laid out
    dock.auto_label.setText("Auto: patchmatch: " + "a reason long enough to wrap " * 8)
    dock.status_label.setText("AOT-GAN · default · 3.4 s")
    qtbot.wait(20)
    area = dock.widget()
    roomy = size[1] >= 900
    for w in (dock.run_button, dock.progress_bar) + ((dock.status_label,) if roomy else ()):
        bottom = w.mapTo(area.viewport(), QPoint(0, w.height())).y()
        assert w.isVisible() and bottom <= area.viewport().height(), w
    if roomy:
        assert win.docks["tool_options_dock"].widget().verticalScrollBar().maximum() == 0


def test_the_settings_tabs_are_as_tall_as_the_page_shown(qtbot):
    from inpaint_gui.ui.models_dock import ModelsDock
    dock = ModelsDock()
    qtbot.addWidget(dock)
    tabs = dock.settings_tabs
    heights = {}
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        heights[tabs.tabText(i)] = tabs.sizeHint().height()
    # the HD strategy page has six rows, Seams two
    assert heights["Seams"] < heights["Model"] < heights["HD strategy"]
