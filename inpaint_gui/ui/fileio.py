"""Bridge to :mod:`inpaint_gui.engine.imageio` (Qt-free): file filters and thin wrappers.

All pixels go through the engine's I/O (EXIF orientation applied, 16-bit kept, alpha kept
aside, atomic writes, ``FileExistsError`` unless ``overwrite``); errors are
``ImageIOError`` with a one-line user-readable message.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from inpaint_gui.engine import imageio as _io
from inpaint_gui.engine.imageio import ImageDoc, ImageIOError, ImageIOWarning  # noqa: F401

MaskSizeError = _io.MaskSizeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
PROJECT_EXTENSION = ".inpaint"

OPEN_FILTER = ("Images and projects (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.inpaint);;"
               "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;"
               "Inpaint projects (*.inpaint);;All files (*)")
SAVE_FILTER = ("PNG image (*.png);;JPEG image (*.jpg *.jpeg);;WebP image (*.webp);;"
               "TIFF image (*.tif *.tiff);;BMP image (*.bmp)")
MASK_FILTER = ("PNG mask (*.png);;All images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)")
PROJECT_FILTER = "Inpaint project (*.inpaint)"


def io_error_types() -> tuple:
    """Exception types whose message can be shown to the user as is."""
    return (ImageIOError, OSError, ValueError)


def is_project_path(path: str) -> bool:
    return str(path).lower().endswith(PROJECT_EXTENSION)


def load_image(path: str) -> ImageDoc:
    return _io.load_image(path)


MAX_KEPT_SOURCE_BYTES = 96 * 1024 * 1024


def load_image_with_source(path: str):
    """(ImageDoc, file bytes or None): the bytes let a project store the untouched original
    compactly instead of re-encoding it (decoding them again gives the same pixels)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        data = None
    if not data:
        return _io.load_image(path), None  # raises the engine's user-readable error
    doc = _io.decode_image(data, Path(path))
    return doc, (data if len(data) <= MAX_KEPT_SOURCE_BYTES else None)


def decode_image(data: bytes, name: str = "image") -> ImageDoc:
    return _io.decode_image(data, Path(name))


def save_image(path: str, rgb: np.ndarray, alpha: Optional[np.ndarray] = None, exif=None,
               icc=None, overwrite: bool = False, quality: int = 95) -> None:
    _io.save_image(path, rgb, alpha=alpha, exif=exif, icc=icc, overwrite=overwrite,
                   quality=quality)


def load_mask(path: str, shape=None, use_alpha: bool = False, resize: bool = False
              ) -> np.ndarray:
    return _io.load_mask(path, shape=shape, use_alpha=use_alpha, resize=resize)


def save_mask(path: str, mask: np.ndarray, overwrite: bool = False) -> None:
    _io.save_mask(path, mask, overwrite=overwrite)


def lossy_note(path: str, quality: int = 95) -> Optional[str]:
    """Why a save to ``path`` will not keep pixels exactly (JPEG, lossy WebP), or None."""
    return _io.lossy_note(path, quality)


def display_name(path: Optional[str]) -> str:
    return os.path.basename(path) if path else "Untitled"
