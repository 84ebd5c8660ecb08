"""Regenerate ``docs/screenshot.png``: the main window on the harbour sample after a fill.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshot.py [--model aot] [--out docs/screenshot.png]
        [--image cows.jpg --extend 0,0,0,300]

Opens ``resources/samples/harbour.jpg`` (or ``--image``), imports ``harbour_mask.png`` (255 =
fill) or, with ``--extend TOP,LEFT,BOTTOM,RIGHT``, drags the canvas borders out by those pixels,
runs the chosen model through the same dock action a user clicks, and grabs the window once the
result layer is shown. Exits non-zero if the fill fails or takes longer than ``--timeout`` seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="aot")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--size", default="1400x900", help="window size WxH")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--image", default="harbour.jpg", help="a photo in resources/samples")
    ap.add_argument("--extend", default=None, metavar="T,L,B,R",
                    help="extend the canvas by these margins (px) instead of filling the mask")
    a = ap.parse_args(argv)

    from PySide6.QtCore import QCoreApplication, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from inpaint_gui import app as app_mod
    from inpaint_gui.ui.main_window import MainWindow

    QCoreApplication.setOrganizationName("inpaint-gui-screenshot")
    QCoreApplication.setApplicationName("screenshot")
    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    app_mod._dark_palette(qapp)
    settings_file = os.path.join(tempfile.mkdtemp(), "settings.ini")
    win = MainWindow(QSettings(settings_file, QSettings.IniFormat), recovery_dir=None)
    app_mod._install_models_gui(win)
    w, h = (int(v) for v in a.size.split("x"))
    win.resize(w, h)
    win.show()
    samples = ROOT / "resources" / "samples"

    def grab_and_quit():
        win.grab().save(a.out)
        print(f"wrote {a.out}")
        # exit(), not quit(): Qt 6's quit() closes the windows first, and the window asks
        # to save the unsaved work (mask, result) in a modal dialog that nobody answers here
        qapp.exit(0)

    def on_finished(_result):
        QTimer.singleShot(500, grab_and_quit)  # let the result layer and docks repaint

    def on_failed(title, msg):
        print(f"fill failed: {title}: {msg}", file=sys.stderr)
        qapp.exit(1)

    def start():
        if not win.open_path(str(samples / a.image), check_modified=False):
            print("cannot open the sample", file=sys.stderr)
            qapp.exit(1)
            return
        if a.extend:
            from inpaint_gui.core.margins import Margins
            win.document.set_margins(Margins(*(int(v) for v in a.extend.split(","))))
        else:
            win.document.import_mask(str(samples / "harbour_mask.png"))
        ctl = win.fill_controller
        ctl.runner.finished.connect(on_finished)
        ctl.runner.failed.connect(on_failed)
        if not ctl.dock.select_model(a.model):
            print(f"model {a.model!r} is not selectable", file=sys.stderr)
            qapp.exit(1)
            return
        ctl.dock.request_run()

    QTimer.singleShot(100, start)
    QTimer.singleShot(int(a.timeout * 1000), lambda: qapp.exit(1))
    return qapp.exec()


if __name__ == "__main__":
    sys.exit(main())
