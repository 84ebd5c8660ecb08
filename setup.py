"""Packaging hook (the metadata is in pyproject.toml): wheels ship the ``models/`` folder.

``models/`` at the top of the source tree holds the model cards (``*.md``), the starter
weights (``*_starter.pt``) and the cards' contact sheets (``cards/``). A built wheel carries
them as package data in ``inpaint_gui/bundled_models/``, where
``inpaint_gui.engine.weights.BUNDLED_DIR`` finds them; an editable install reads ``models/``
in place.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MODELS = ROOT / "models"
PATTERNS = ("*.md", "*.pt", "cards/*.jpg", "cards/*.png", "cards/*.json")


def bundled_files():
    """(source, path relative to models/) of every file a wheel ships."""
    if not MODELS.is_dir():
        return []
    return sorted({(p, p.relative_to(MODELS)) for pat in PATTERNS for p in MODELS.glob(pat)
                   if p.is_file()})


class BuildPyWithModels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the source tree's models/ is used in place
        dest = Path(self.build_lib) / "inpaint_gui" / "bundled_models"
        for src, rel in bundled_files():
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)


setup(cmdclass={"build_py": BuildPyWithModels})
