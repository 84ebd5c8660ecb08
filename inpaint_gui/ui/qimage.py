"""numpy <-> QImage: the one place where pixels cross between the document's arrays and Qt.

Copies go through ``qimage2ndarray`` (as the design says). Every crossing says whether it
shares memory or copies:

* :func:`view_qimage` — a QImage that SHARES a numpy buffer (no copy). The canvas draws the
  image pyramid and the Indexed8 mask overlay straight from arrays that the tools edit in
  place; the caller keeps the array alive (and unchanged in shape) while the QImage is used.
  ``qimage2ndarray`` only makes views the other way (QImage -> numpy), hence this one here.
* :func:`to_qimage` — an owning 32-bit COPY of RGB (+ alpha) for pixmaps and the clipboard
  (``qimage2ndarray.array2qimage``).
* :func:`arrays_from_qimage` — (rgb, alpha or None) COPIED out of any QImage (a pasted image).
* :func:`display8` — the 8-bit display form of the document's uint8/uint16 arrays (16-bit
  rounded like the engine's ``imageio.to_uint8``); the canvas and the result layers use the
  same, so a result shows exactly the pixels of the image under it where they agree.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from PySide6.QtGui import QImage

import qimage2ndarray  # noqa: I001 - after PySide6: it picks the Qt binding already loaded

from inpaint_gui.engine.imageio import to_uint8

__all__ = ["display8", "view_qimage", "to_qimage", "arrays_from_qimage"]


def _to8(a: np.ndarray) -> np.ndarray:
    if a.dtype in (np.uint8, np.uint16):
        return to_uint8(a)
    return np.clip(np.rint(a.astype(np.float32) * 255), 0, 255).astype(np.uint8)


def display8(rgb: np.ndarray, alpha: Optional[np.ndarray] = None) -> np.ndarray:
    """The 8-bit display form: HxWx3 (the array itself when it is uint8), or HxWx4 with
    ``alpha``. uint16 is rounded, float [0, 1] scaled and rounded; a uint16 alpha keeps its
    high byte."""
    rgb8 = _to8(np.asarray(rgb))
    if alpha is None:
        return rgb8
    a = np.asarray(alpha)
    a8 = (a >> 8).astype(np.uint8) if a.dtype == np.uint16 else a.astype(np.uint8)
    return np.dstack([rgb8, a8])


def view_qimage(arr: np.ndarray) -> QImage:
    """A QImage sharing the buffer of a C-contiguous uint8 array: HxW -> Indexed8 (give it a
    colour table), HxWx3 -> RGB888, HxWx4 -> RGBA8888. No copy: keep ``arr`` alive."""
    if arr.dtype != np.uint8 or not arr.flags.c_contiguous:
        raise ValueError("view_qimage needs a C-contiguous uint8 array")
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        fmt = QImage.Format.Format_Indexed8
    elif arr.shape[2] == 3:
        fmt = QImage.Format.Format_RGB888
    elif arr.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
    else:
        raise ValueError(f"cannot show an array of shape {arr.shape}")
    return QImage(arr.data, w, h, arr.strides[0], fmt)


def to_qimage(rgb: np.ndarray, alpha: Optional[np.ndarray] = None) -> QImage:
    """An owning 32-bit QImage (RGB32, or ARGB32 with ``alpha``) of HxWx3 RGB
    (uint8 / uint16 / float [0, 1]); :func:`display8` gives the 8-bit values."""
    return qimage2ndarray.array2qimage(display8(rgb, alpha))


def arrays_from_qimage(img: QImage) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(rgb uint8 HxWx3, alpha HxW or None) copied out of ``img``; the alpha only when the
    image has one that is not fully opaque."""
    q = img.convertToFormat(QImage.Format.Format_ARGB32)
    rgb = np.array(qimage2ndarray.rgb_view(q), np.uint8, order="C")
    alpha = None
    if img.hasAlphaChannel():
        a = qimage2ndarray.alpha_view(q)
        if (a != 255).any():
            alpha = np.array(a, np.uint8, order="C")
    return rgb, alpha
