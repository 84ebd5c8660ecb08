"""Crash recovery (issue 22, item 5): every leftover offered newest first with date and image
name, nothing deleted unseen, pid reuse, one recovery folder (not .../inpaint-gui/inpaint-gui)."""
import os
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from inpaint_gui.core import recovery as R  # noqa: E402

_CRASH = textwrap.dedent("""
    import os, sys
    import numpy as np
    from inpaint_gui.core.recovery import Autosaver
    from inpaint_gui.core.project import ProjectState, save_project
    folder, source, h, w, fill = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    img = np.full((h, w, 3), fill, np.uint8)
    mask = np.zeros((h, w), np.uint8); mask[1:3, 1:3] = 255
    a = Autosaver(folder, save_project)
    assert a.save_async(ProjectState(image=img, mask=mask, source_path=source or None))
    a.wait()
    assert a.last_error is None, a.last_error
    print(a.path, flush=True)
    os._exit(0)  # a crash: nothing is cleaned up, the lock goes with the process
""")


def crashed_session(folder, source="", size=(4, 6), fill=7, age_s=0.0) -> str:
    """Run a session in another process that autosaves and dies; returns its recovery file."""
    res = subprocess.run([sys.executable, "-c", _CRASH, str(folder), source, str(size[0]),
                          str(size[1]), str(fill)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def _rename_pid(path: str, pid: int) -> str:
    """Give a recovery file (and its lock) the pid ``pid`` in its name."""
    folder, name = os.path.split(path)
    session = name.split("-")[2]
    new = os.path.join(folder, f"autosave-{pid}-{session}")
    os.rename(path, new)
    lock = path[:-len(".inpaint")] + ".lock"
    if os.path.exists(lock):
        os.rename(lock, new[:-len(".inpaint")] + ".lock")
    return new


@pytest.fixture
def live_process():
    """Another running program (its pid is 'alive')."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.2)
    yield p
    p.kill()
    p.wait()


# ============================================================================ Qt-free core

def test_core_recovery_imports_without_qt():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'shiboken6', 'qimage2ndarray'):
                    raise ImportError('Qt is blocked in this test: ' + name)
        sys.meta_path.insert(0, Block())
        import inpaint_gui.core, inpaint_gui.core.recovery
        print('OK')
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr


def test_every_leftover_is_listed_newest_first_with_date_and_image(tmp_path):
    rdir = tmp_path / "recovery"
    old = crashed_session(rdir, "/photos/old_harbour.jpg", (4, 6), age_s=3600)
    new = crashed_session(rdir, "/photos/new_cows.png", (5, 8), age_s=60)
    got = R.find_leftovers([rdir])
    assert [g.path for g in got] == [new, old]
    assert [g.image_name for g in got] == ["new_cows.png", "old_harbour.jpg"]
    assert got[0].image_size == (8, 5) and got[1].image_size == (6, 4)
    assert got[0].when == time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(new)))
    assert "new_cows.png" in got[0].describe() and got[0].when in got[0].describe()
    assert os.path.exists(old) and os.path.exists(new)  # listing deletes nothing


def test_a_damaged_leftover_is_listed_not_hidden(tmp_path):
    rdir = tmp_path / "recovery"
    rdir.mkdir()
    bad = rdir / "autosave-999999-00aa11bb22.inpaint"
    bad.write_bytes(b"not a zip")
    got = R.find_leftovers([rdir])
    assert [g.path for g in got] == [str(bad)] and got[0].problem
    assert bad.exists()


def test_a_reused_pid_does_not_hide_a_leftover(tmp_path, live_process):
    rdir = tmp_path / "recovery"
    # the crashed session's pid now belongs to another running program
    path = _rename_pid(crashed_session(rdir, "/p/a.jpg"), live_process.pid)
    assert R.pid_alive(live_process.pid)
    assert [g.path for g in R.find_leftovers([rdir])] == [path]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times: /proc")
def test_a_reused_pid_does_not_hide_an_old_style_leftover(tmp_path, live_process):
    """Files of earlier builds have no lock file: the pid's process started after the file
    was written, so it is not the writer."""
    rdir = tmp_path / "recovery"
    path = crashed_session(rdir, "/p/a.jpg", age_s=600)
    os.unlink(path[:-len(".inpaint")] + ".lock")
    t = os.path.getmtime(path)
    path = _rename_pid(path, live_process.pid)
    os.utime(path, (t, t))
    assert [g.path for g in R.find_leftovers([rdir])] == [path]
    # ... but a file written after its (running) writer started is still that writer's
    mine = _rename_pid(crashed_session(rdir, "/p/b.jpg"), os.getpid())
    os.unlink(mine[:-len(".inpaint")] + ".lock")
    assert [g.path for g in R.find_leftovers([rdir])] == [path]


def test_a_running_sessions_file_is_not_offered(tmp_path):
    from inpaint_gui.core.project import ProjectState, save_project
    rdir = tmp_path / "recovery"
    live = R.Autosaver(rdir, save_project)
    img = np.zeros((4, 4, 3), np.uint8)
    assert live.save_async(ProjectState(image=img, mask=np.zeros((4, 4), np.uint8)))
    live.wait()
    assert os.path.exists(live.path) and os.path.exists(live.lock_path)
    assert R.find_leftovers([rdir]) == []  # locked by this (running) process
    live.close()
    assert not os.path.exists(live.path) and not os.path.exists(live.lock_path)


def test_stale_lock_files_are_tidied_but_live_ones_kept(tmp_path):
    from inpaint_gui.core.project import ProjectState, save_project
    rdir = tmp_path / "recovery"
    path = crashed_session(rdir)
    lock = path[:-len(".inpaint")] + ".lock"
    os.unlink(path)  # the session had discarded its file, then crashed: only the lock is left
    live = R.Autosaver(rdir, save_project)
    assert live.save_async(ProjectState(image=np.zeros((2, 2, 3), np.uint8),
                                        mask=np.zeros((2, 2), np.uint8)))
    live.wait()
    live.discard()  # a running session with no unsaved work keeps its (held) lock
    assert R.find_leftovers([rdir]) == []
    assert not os.path.exists(lock) and os.path.exists(live.lock_path)
    live.close()


def test_delete_leftover_only_takes_recovery_files(tmp_path):
    other = tmp_path / "photo.inpaint"
    other.write_bytes(b"x")
    with pytest.raises(ValueError):
        R.delete_leftover(other)
    assert other.exists()
    path = crashed_session(tmp_path / "recovery")
    R.delete_leftover(path)
    assert not os.path.exists(path) and not os.path.exists(path[:-8] + ".lock")


def test_recovery_folder_is_not_doubled(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert R.default_recovery_dir() == tmp_path / "share" / "inpaint-gui" / "recovery"
    from inpaint_gui.engine.weights import user_models_dir
    monkeypatch.delenv("INPAINT_GUI_MODELS")
    assert user_models_dir().parent == R.default_recovery_dir().parent


# ============================================================================ window

class Answers:
    def __init__(self, win, choose=None):
        self.offered = []
        self.choose = choose
        self.errors = []
        win.ask_recovery = self.ask
        win.show_error = lambda title, text: self.errors.append(text)

    def ask(self, leftovers):
        self.offered.append(list(leftovers))
        return self.choose(leftovers) if self.choose else None


@pytest.fixture
def make_window(qtbot, tmp_path):
    from inpaint_gui.ui.main_window import MainWindow

    def make(rdir, **kw):
        w = MainWindow(QSettings(str(tmp_path / f"s{time.monotonic_ns()}.ini"),
                                 QSettings.IniFormat), recovery_dir=str(rdir), **kw)
        qtbot.addWidget(w, before_close_func=lambda w: w.document.mark_clean())
        return w
    return make


def test_window_offers_every_leftover_and_keeps_the_ones_not_recovered(tmp_path, make_window):
    rdir = tmp_path / "recovery"
    old = crashed_session(rdir, "/p/old.jpg", (4, 6), fill=11, age_s=7200)
    new = crashed_session(rdir, "/p/new.jpg", (5, 7), fill=22, age_s=30)
    w = make_window(rdir)
    ans = Answers(w, choose=lambda items: items[1])  # the user picks the older one
    assert w.check_recovery()
    assert [[i.path for i in offer] for offer in ans.offered] == [[new, old]]
    d = w.document
    assert d.image.shape == (4, 6, 3) and int(d.image[0, 0, 0]) == 11
    assert d.is_modified() and d.project_path is None and "old.jpg" in d.name
    # the recovered work now lives in this session's own file; only then is the old one gone
    assert os.path.exists(w.autosaver.path) and not os.path.exists(old)
    assert os.path.exists(new)  # never seen-and-deleted: still there for next time
    # the next start offers the one not recovered (this window's own file is not offered)
    w2 = make_window(rdir)
    ans2 = Answers(w2)
    assert not w2.check_recovery()
    assert [[i.path for i in offer] for offer in ans2.offered] == [[new]]
    assert os.path.exists(new)


def test_keep_for_later_deletes_nothing(tmp_path, make_window):
    rdir = tmp_path / "recovery"
    files = [crashed_session(rdir, f"/p/{i}.jpg", age_s=100 * i) for i in (1, 2)]
    w = make_window(rdir)
    Answers(w)
    assert not w.check_recovery()
    assert all(os.path.exists(f) for f in files)
    assert w.document.is_empty()


def test_a_leftover_that_fails_to_load_is_kept(tmp_path, make_window):
    rdir = tmp_path / "recovery"
    rdir.mkdir()
    bad = rdir / "autosave-999999-00aa11bb22.inpaint"
    bad.write_bytes(b"PK\x03\x04 truncated")
    w = make_window(rdir)
    ans = Answers(w, choose=lambda items: items[0])
    assert not w.check_recovery()
    assert ans.errors and "kept" in ans.errors[0] and bad.exists()


def test_leftovers_in_the_old_doubled_folder_are_still_offered(tmp_path, make_window,
                                                                monkeypatch):
    from inpaint_gui import app as app_mod
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    legacy = app_mod._legacy_recovery_dirs()
    assert legacy and legacy[0].endswith(os.path.join("inpaint-gui", "recovery"))
    old = crashed_session(legacy[0], "/p/legacy.jpg")
    w = make_window(R.default_recovery_dir(), extra_recovery_dirs=legacy)
    ans = Answers(w)
    w.check_recovery()
    assert [[i.path for i in offer] for offer in ans.offered] == [[old]]


def test_menu_recover_asks_to_save_current_work_first(tmp_path, make_window, qtbot):
    from PySide6.QtWidgets import QMessageBox
    rdir = tmp_path / "recovery"
    left = crashed_session(rdir, "/p/left.jpg", fill=33)
    w = make_window(rdir)
    Answers(w, choose=lambda items: items[0])
    w.document.set_image_data(np.zeros((3, 3, 3), np.uint8), None, name="current")
    w.document.mark_modified()
    asked = []
    w.ask_question = lambda title, text, buttons, default: (asked.append(text),
                                                            QMessageBox.Cancel)[1]
    w.actions["recover"].trigger()
    assert asked and "unsaved changes" in asked[0]
    assert w.document.image.shape == (3, 3, 3) and os.path.exists(left)  # cancelled: nothing lost


# ============================================================================ dialog

def _leftovers(rdir):
    crashed_session(rdir, "/p/older.jpg", (4, 6), age_s=7200)
    crashed_session(rdir, "/p/newer.jpg", (5, 7), age_s=30)
    return R.find_leftovers([rdir])


def test_dialog_lists_every_leftover_newest_first(qtbot, tmp_path):
    from inpaint_gui.ui.recovery import RecoveryDialog
    items = _leftovers(tmp_path / "recovery")
    dlg = RecoveryDialog(items)
    qtbot.addWidget(dlg)
    rows = [[dlg.tree.topLevelItem(i).text(c) for c in range(4)]
            for i in range(dlg.tree.topLevelItemCount())]
    assert [r[1] for r in rows] == ["newer.jpg", "older.jpg"]
    assert rows[0][0] == items[0].when and rows[1][0] == items[1].when
    assert rows[0][2] == "7\u00d75" and rows[1][2] == "6\u00d74"
    assert "2 pieces of unsaved work" in dlg.intro.text()
    assert dlg.selected() == [items[0]]  # the newest is preselected
    dlg.select(1)
    assert dlg.recover_selected() and dlg.chosen is items[1] and dlg.deleted == []
    assert all(os.path.exists(i.path) for i in items)


def test_dialog_deletes_only_what_the_user_selected_and_confirmed(qtbot, tmp_path):
    from inpaint_gui.ui.recovery import RecoveryDialog
    items = _leftovers(tmp_path / "recovery")
    dlg = RecoveryDialog(items)
    qtbot.addWidget(dlg)
    questions = []
    dlg.confirm = lambda title, text: (questions.append(text), False)[1]
    dlg.select(1)
    assert not dlg.delete_selected()
    assert all(os.path.exists(i.path) for i in items)  # answered No
    assert "older.jpg" in questions[0] and "newer.jpg" not in questions[0]
    dlg.confirm = lambda title, text: True
    assert dlg.delete_selected()
    assert not os.path.exists(items[1].path) and os.path.exists(items[0].path)
    assert dlg.deleted == [items[1].path] and dlg.rows() == [items[0]]
    assert dlg.chosen is None
