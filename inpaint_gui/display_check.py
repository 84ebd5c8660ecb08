"""Is there a display the desktop app can open its window on? (Qt-free; Linux and BSD.)

Without one, Qt aborts the process with "xcb-cursor0 or libxcb-cursor0 is needed to load the
Qt xcb platform plugin" even when that library is installed: Qt prints this hint whenever
its X11 ("xcb") platform fails to start, whatever the reason. :func:`display_problem` finds the
real reason first (no display variable, an X server that does not answer, a missing system
library) so that the app can say it in plain words and exit.
"""
from __future__ import annotations

import ctypes
import os
import socket
import sys
from typing import Callable, Mapping, Optional, Sequence

# Qt platform plugins that need no display server.
HEADLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb",
                      "vkkhrdisplay")

# Shared libraries Qt's xcb platform plugin loads, with the Debian/Ubuntu package of each
# (the same list is in the README, "Set up").
XCB_LIBRARIES = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libEGL.so.1", "libegl1"),
    ("libGL.so.1", "libgl1"),
    ("libfontconfig.so.1", "libfontconfig1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
)
XCB_PACKAGES = " ".join(pkg for _lib, pkg in XCB_LIBRARIES)

_HINT = ("Start it from a desktop session, connect with 'ssh -X', or give it a virtual display "
         "('xvfb-run -a make run'). The command line works without a display: 'inpaint --help'.")


def _platforms(env: Mapping[str, str]) -> "list[str]":
    """The platform plugins Qt will try, from QT_QPA_PLATFORM ("wayland;xcb", "xcb:opt")."""
    value = env.get("QT_QPA_PLATFORM", "") or ""
    return [p.split(":", 1)[0].strip().lower() for p in value.split(";") if p.strip()]


def _library_loads(name: str) -> bool:
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        pass
    try:  # a wheel may bundle some of them next to its Qt libraries
        import importlib.util
        spec = importlib.util.find_spec("PySide6")
        if spec and spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                path = os.path.join(root, "Qt", "lib", name)
                if os.path.exists(path):
                    ctypes.CDLL(path)
                    return True
    except (OSError, ImportError, ValueError):
        pass
    return False


def missing_xcb_libraries(loads: Callable[[str], bool] = _library_loads) -> "list[tuple[str, str]]":
    """(library, Debian package) of each library of Qt's xcb platform that cannot be loaded."""
    return [(lib, pkg) for lib, pkg in XCB_LIBRARIES if not loads(lib)]


def _local_x_display_number(display: str) -> Optional[str]:
    """"7" for ":7", ":7.0" or "unix:7"; None for remote displays ("host:10.0")."""
    host, sep, rest = display.rpartition(":")
    if not sep or host not in ("", "unix"):
        return None
    number = rest.split(".", 1)[0]
    return number if number.isdigit() else None


def _x_server_answers(number: str) -> bool:
    path = f"/tmp/.X11-unix/X{number}"
    for address in ("\0" + path, path):  # Linux abstract socket first, then the file
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect(address)
            return True
        except OSError:
            continue
        finally:
            s.close()
    return False


def display_problem(env: Optional[Mapping[str, str]] = None, platform: Optional[str] = None,
                    missing_libraries: Callable[[], Sequence] = missing_xcb_libraries,
                    x_server_answers: Callable[[str], bool] = _x_server_answers) -> Optional[str]:
    """A plain-words message when the window cannot be opened, else None.

    Only Linux and the BSDs are checked (Windows and macOS always have a display).
    ``INPAINT_GUI_SKIP_DISPLAY_CHECK=1`` turns the check off (Qt then reports on its own)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if (env.get("INPAINT_GUI_SKIP_DISPLAY_CHECK") or "").strip() not in ("", "0"):
        return None
    if not (platform.startswith("linux") or "bsd" in platform):
        return None
    wanted = _platforms(env)
    if any(p in HEADLESS_PLATFORMS for p in wanted):
        return None
    display = (env.get("DISPLAY") or "").strip()
    wayland = (env.get("WAYLAND_DISPLAY") or "").strip()
    uses_wayland = bool(wayland) and (not wanted or any(p.startswith("wayland") for p in wanted))
    uses_xcb = bool(display) and (not wanted or "xcb" in wanted)
    if not uses_wayland and not uses_xcb:
        if any(p != "xcb" for p in wanted):
            return None  # Wayland (its default socket needs no variable) or another plugin
        if wanted:
            return (f"No display found: QT_QPA_PLATFORM={env.get('QT_QPA_PLATFORM')} needs "
                    f"DISPLAY (X11), which is unset. {_HINT}")
        return ("No display found: the app needs a graphical session, but DISPLAY (X11) and "
                f"WAYLAND_DISPLAY (Wayland) are both unset. {_HINT}")
    if uses_wayland:
        return None  # Wayland: Qt's own messages are clear enough
    number = _local_x_display_number(display)
    if number is not None and not x_server_answers(number):
        return (f"No display found: DISPLAY is {display!r}, but no X server answers there "
                f"(it may have stopped, or the variable is left over from another session). "
                f"{_HINT}")
    missing = list(missing_libraries())
    if missing:
        libs = ", ".join(lib for lib, _pkg in missing)
        pkgs = " ".join(pkg for _lib, pkg in missing)
        return (f"Qt's X11 (xcb) platform cannot start: these system libraries are missing: "
                f"{libs}. On Debian/Ubuntu install them with:\n"
                f"    sudo apt-get install {pkgs}")
    return None
