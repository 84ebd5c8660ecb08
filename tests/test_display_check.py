"""No display: a plain message before Qt aborts (issue 22, item 6)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inpaint_gui import display_check as dc

ROOT = Path(__file__).resolve().parents[1]

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the display check only runs on Linux and the BSDs")


def _bare_env(**extra):
    """The environment of a text console: no DISPLAY, WAYLAND_DISPLAY or QT_QPA_PLATFORM."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "LANG": "C.UTF-8"}
    env.update(extra)
    return env


@linux_only
def test_app_without_display_says_so_and_exits(tmp_path):
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, str(ROOT / "main.py"),
                          str(ROOT / "resources" / "samples" / "harbour.jpg")],
                         env=_bare_env(), cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    assert "No display found" in res.stderr
    assert "DISPLAY" in res.stderr and "xvfb-run" in res.stderr
    assert "xcb-cursor0" not in res.stderr  # Qt was never asked to start
    assert "Aborted" not in res.stderr and "core dumped" not in res.stderr
    assert time.monotonic() - t0 < 60


@linux_only
def test_app_with_a_dead_x_display_says_so(tmp_path):
    used = {n[1:] for n in os.listdir("/tmp/.X11-unix")} if os.path.isdir("/tmp/.X11-unix") \
        else set()
    number = next(str(n) for n in range(4711, 4800) if str(n) not in used)
    res = subprocess.run([sys.executable, str(ROOT / "main.py")],
                         env=_bare_env(DISPLAY=f":{number}"), cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    assert f"DISPLAY is ':{number}', but no X server answers there" in res.stderr


def test_headless_platforms_and_other_systems_need_no_display():
    assert dc.display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert dc.display_problem({"QT_QPA_PLATFORM": "minimal"}, "linux") is None
    assert dc.display_problem({}, "darwin") is None
    assert dc.display_problem({}, "win32") is None


def test_the_check_can_be_turned_off():
    assert dc.display_problem({"INPAINT_GUI_SKIP_DISPLAY_CHECK": "1"}, "linux") is None
    assert dc.display_problem({"INPAINT_GUI_SKIP_DISPLAY_CHECK": "0"}, "linux") is not None


def test_missing_display_variables():
    msg = dc.display_problem({}, "linux")
    assert msg.startswith("No display found") and "DISPLAY" in msg and "WAYLAND_DISPLAY" in msg
    msg = dc.display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert "QT_QPA_PLATFORM=xcb needs DISPLAY" in msg
    # Wayland on its own: Qt's Wayland messages are clear, and no variable is strictly needed
    assert dc.display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None


def test_x_display_checks():
    def never(_n):
        raise AssertionError("a remote display must not be probed as a local socket")

    ok = lambda: []  # noqa: E731 - every library present
    assert dc.display_problem({"DISPLAY": ":3"}, "linux", ok, lambda n: n == "3") is None
    msg = dc.display_problem({"DISPLAY": ":3.0"}, "linux", ok, lambda n: False)
    assert "no X server answers" in msg and "':3.0'" in msg
    assert dc.display_problem({"DISPLAY": "localhost:10.0"}, "linux", ok, never) is None
    missing = lambda: [("libxcb-icccm.so.4", "libxcb-icccm4"),  # noqa: E731
                       ("libxcb-keysyms.so.1", "libxcb-keysyms1")]
    msg = dc.display_problem({"DISPLAY": ":0"}, "linux", missing, lambda n: True)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in msg
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in msg


def test_missing_library_detection_uses_the_loader():
    absent = {"libxcb-icccm.so.4"}
    got = dc.missing_xcb_libraries(lambda name: name not in absent)
    assert got == [("libxcb-icccm.so.4", "libxcb-icccm4")]
    assert dc.missing_xcb_libraries(lambda name: True) == []


def test_readme_lists_the_system_packages_of_qt_xcb():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next((ln for ln in readme.splitlines() if "apt-get install" in ln and "libxcb" in ln),
                None)
    assert line is not None, "README: no apt-get line for Qt's xcb platform"
    for _lib, pkg in dc.XCB_LIBRARIES:
        assert pkg in line.split(), pkg
