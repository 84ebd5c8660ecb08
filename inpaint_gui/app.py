"""Desktop entry point: ``python main.py [IMAGE]`` or ``inpaint-gui [IMAGE]``."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

ORGANIZATION = "inpaint-gui"
APPLICATION = "inpaint-gui"


def _dark_palette(app) -> None:
    """The dark theme (:func:`inpaint_gui.ui.theme.apply_dark_theme`)."""
    from .ui.theme import apply_dark_theme
    apply_dark_theme(app)


def parse_args(argv: Optional[List[str]]):
    ap = argparse.ArgumentParser(prog="inpaint-gui",
                                 description="Offline image inpainting and outpainting")
    ap.add_argument("image", nargs="?", help="image or .inpaint project to open")
    ap.add_argument("--light", action="store_true", help="use the platform's default style")
    return ap.parse_known_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Create the QApplication and the main window; open the image given on the command line.

    Without a usable display it prints why (:mod:`inpaint_gui.display_check`) and returns 1
    before Qt is loaded: Qt would abort with a misleading message about xcb-cursor0."""
    full = list(sys.argv if argv is None else [sys.argv[0] if sys.argv else "inpaint-gui"]
                + list(argv))
    args, _qt_args = parse_args(full[1:])
    if not _qt_app_running():
        from .display_check import display_problem
        problem = display_problem()
        if problem:
            print(f"inpaint-gui: {problem}", file=sys.stderr)
            return 1
    from .engine.memory import request_torch_huge_pages
    request_torch_huge_pages()  # before anything imports torch
    from PySide6.QtCore import QCoreApplication, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication(full[:1] + _qt_args)
    if not args.light:
        _dark_palette(app)

    from .core.recovery import default_recovery_dir
    from .ui.main_window import MainWindow
    win = MainWindow(QSettings(), recovery_dir=str(default_recovery_dir()),
                     extra_recovery_dirs=_legacy_recovery_dirs())
    _install_models_gui(win)
    win.show()

    def start():
        win.check_recovery()
        if args.image:
            win.open_path(args.image)  # asks first if recovered work is unsaved
    QTimer.singleShot(0, start)
    return app.exec()


def _legacy_recovery_dirs() -> List[str]:
    """Where earlier builds wrote recovery files (Qt's per-application data folder,
    ``~/.local/share/inpaint-gui/inpaint-gui/recovery`` on Linux): still offered."""
    from PySide6.QtCore import QStandardPaths
    base = QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation)
    return [os.path.join(base, ORGANIZATION, APPLICATION, "recovery")] if base else []


def _qt_app_running() -> bool:
    """A QApplication exists already (tests, embedding): its display works."""
    mod = sys.modules.get("PySide6.QtWidgets")
    return bool(mod is not None and mod.QApplication.instance() is not None)


def _install_models_gui(win) -> None:
    """Add the model-running GUI (models dock, runner, result layer, comparison, model
    manager): :func:`inpaint_gui.ui.fill_controller.install`. A failure there is logged and
    leaves a working editor."""
    try:
        from .ui import fill_controller  # noqa: WPS433
        fill_controller.install(win)
    except Exception:  # noqa: BLE001 - the editor must still open
        import logging
        logging.getLogger(__name__).exception("the model-running GUI could not be installed")
        win.status_message("Models are unavailable (see the log)", 10000)


if __name__ == "__main__":
    sys.exit(main())
