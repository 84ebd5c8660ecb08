"""Qt-free result layers: a fill result shown above the image, and what accepting it changes.

* :class:`ResultLayer` — the state of the layer the canvas shows (array, opacity, visibility,
  split position, "peek" = show the original while a key is held) and the display math
  :func:`composite_view` / :func:`blend` / :func:`split_column`.
* :class:`ImagePatch` — the undo data of a same-size image edit (box + old/new pixels).
* Accepting: :func:`accept_patch` (the image patch of a same-size result at an opacity,
  limited to a mask), :func:`accept_in_place` (that patch plus the mask that stays: strokes
  painted during the run are kept) and :func:`accept_on_canvas` (an outpainting result
  replaces the canvas; a mask inside the old image is kept for a later run).
  ``Document.accept_result`` turns them into one undo item.

Boxes are ``(y0, x0, y1, x1)``, half-open (:mod:`.brush`). ``split`` is a fraction of the
width in [0, 1]: columns ``x < round(split * width)`` show the original (0 = the whole result
is shown, 1 = only the original).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from .brush import BBox, diff_bbox
from .margins import Margins, place_on_canvas
from .mask_edit import MaskPatch


def split_column(width: int, split: float) -> int:
    """First column that shows the result for a split fraction (clamped to [0, width])."""
    return int(min(width, max(0, round(float(split) * width))))


def blend(original: np.ndarray, result: np.ndarray, opacity: float) -> np.ndarray:
    """``result`` over ``original`` at ``opacity`` (0..1), rounded, in their dtype."""
    if original.shape != result.shape:
        raise ValueError(f"result {result.shape} and original {original.shape} differ in shape")
    a = float(min(1.0, max(0.0, opacity)))
    if a >= 1.0:
        return result.copy()
    if a <= 0.0:
        return original.copy()
    mix = original.astype(np.float32) * (1.0 - a) + result.astype(np.float32) * a
    if np.issubdtype(original.dtype, np.integer):
        info = np.iinfo(original.dtype)
        return np.clip(np.rint(mix), info.min, info.max).astype(original.dtype)
    return mix.astype(original.dtype)


def composite_view(original: np.ndarray, result: np.ndarray, opacity: float = 1.0,
                   visible: bool = True, split: float = 0.0, peek: bool = False) -> np.ndarray:
    """What the canvas shows: the original where the result is hidden/peeked/left of the
    split, elsewhere the result blended over the original at ``opacity``."""
    if not visible or peek:
        return original.copy()
    out = blend(original, result, opacity)
    x = split_column(original.shape[1], split)
    if x > 0:
        out[:, :x] = original[:, :x]
    return out


class ImagePatch:
    """Undo data of an image edit: ``bbox`` = (y0, x0, y1, x1) and the old/new pixels there."""

    __slots__ = ("bbox", "old", "new")

    def __init__(self, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        y0, x0, y1, x1 = (int(v) for v in bbox)
        if old.shape != new.shape or old.shape[:2] != (y1 - y0, x1 - x0):
            raise ValueError("patch arrays must match the bbox")
        self.bbox = (y0, x0, y1, x1)
        self.old = old
        self.new = new

    @classmethod
    def between(cls, old_image: np.ndarray, new_image: np.ndarray) -> Optional["ImagePatch"]:
        """The patch (copies of the changed box) that turns ``old_image`` into ``new_image``;
        None if they are equal."""
        b = diff_bbox(old_image, new_image)
        if b is None:
            return None
        y0, x0, y1, x1 = b
        return cls(b, old_image[y0:y1, x0:x1].copy(), new_image[y0:y1, x0:x1].copy())

    @property
    def nbytes(self) -> int:
        return int(self.old.nbytes + self.new.nbytes)

    def _write(self, image: np.ndarray, values: np.ndarray, inplace: bool) -> np.ndarray:
        out = image if inplace else image.copy()
        y0, x0, y1, x1 = self.bbox
        out[y0:y1, x0:x1] = values
        return out

    def apply(self, image: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``image`` with the new pixels (a copy unless ``inplace``): redo."""
        return self._write(image, self.new, inplace)

    def revert(self, image: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``image`` with the old pixels back (a copy unless ``inplace``): undo."""
        return self._write(image, self.old, inplace)


def accept_patch(image: np.ndarray, result: np.ndarray, opacity: float = 1.0,
                 mask: Optional[np.ndarray] = None) -> Optional[ImagePatch]:
    """Accept: the patch that turns ``image`` into the result blended at ``opacity``.

    Only pixels that change are covered (the box of the differences, further limited to
    ``mask > 0`` when a mask is given). Returns None when nothing would change. The result
    must have the image's shape (an outpainting result changes the canvas size:
    :func:`accept_on_canvas`)."""
    if result.shape != image.shape:
        raise ValueError(f"result {result.shape[1]}x{result.shape[0]} does not match the image "
                         f"{image.shape[1]}x{image.shape[0]} (outpainting results replace the "
                         "whole canvas)")
    if result.dtype != image.dtype:
        raise ValueError(f"result dtype {result.dtype} differs from the image's {image.dtype}")
    new_full = blend(image, result, opacity)
    if mask is not None:
        sel = np.asarray(mask) > 0
        if sel.shape != image.shape[:2]:
            raise ValueError("mask shape does not match the image")
        new_full = np.where(sel[..., None] if new_full.ndim == 3 else sel, new_full, image)
    return ImagePatch.between(image, new_full)


class InPlaceAccept(NamedTuple):
    """What accepting a same-size result changes: the image patch and the mask patch (None
    when the mask stays as it is)."""

    image: ImagePatch
    mask: Optional[MaskPatch]


def accept_in_place(image: np.ndarray, mask: np.ndarray, result: np.ndarray,
                    opacity: float = 1.0, run_mask: Optional[np.ndarray] = None
                    ) -> Optional[InPlaceAccept]:
    """Accepting a same-size ``result``: the pixels change where the run filled
    (``run_mask > 0``; everywhere without a run mask) and that part of ``mask`` is cleared,
    so strokes painted while the run was going stay. None when the image would not change."""
    if run_mask is not None and run_mask.shape != image.shape[:2]:
        run_mask = None
    patch = accept_patch(image, result, opacity, run_mask)
    if patch is None:
        return None
    if run_mask is None:
        new_mask = np.zeros_like(mask)
    else:
        new_mask = mask.copy()
        new_mask[run_mask > 0] = 0
    return InPlaceAccept(patch, MaskPatch.between(mask, new_mask))


@dataclass
class CanvasState:
    """Image, alpha, mask and margins of a document, all at once."""

    image: np.ndarray
    alpha: Optional[np.ndarray]
    mask: np.ndarray
    margins: Margins


def accept_on_canvas(doc: CanvasState, result: np.ndarray,
                     result_alpha: Optional[np.ndarray] = None) -> CanvasState:
    """Accepting an outpainting ``result`` (the size of the image extended by
    ``doc.margins``): it becomes the image, the margins go back to zero, a mask painted
    inside the old image is kept at its place on the new one (the run filled the margins
    only), and the alpha (if any) is extended with opaque margins."""
    m = doc.margins
    ch, cw = m.canvas_size(*doc.image.shape[:2])
    if result.shape != (ch, cw) + doc.image.shape[2:]:
        raise ValueError(f"result {result.shape[1]}x{result.shape[0]} does not fit the "
                         f"extended canvas {cw}x{ch}")
    if result.dtype != doc.image.dtype:
        raise ValueError(f"result dtype {result.dtype} != image dtype {doc.image.dtype}")
    alpha = result_alpha
    if alpha is None and doc.alpha is not None:
        alpha = place_on_canvas(doc.alpha, m, np.iinfo(doc.alpha.dtype).max)
    mask = place_on_canvas(doc.mask, m, 0)
    return CanvasState(np.ascontiguousarray(result), alpha, mask, Margins())


@dataclass
class ResultLayer:
    """State of the result shown above the original."""

    original: np.ndarray
    result: np.ndarray
    opacity: float = 1.0
    visible: bool = True
    split: float = 0.0
    peek: bool = False
    name: str = "Result"

    def __post_init__(self) -> None:
        self.opacity = float(min(1.0, max(0.0, self.opacity)))
        self.split = float(min(1.0, max(0.0, self.split)))

    @property
    def same_size(self) -> bool:
        return self.original.shape == self.result.shape

    @property
    def showing_result(self) -> bool:
        return self.visible and not self.peek and self.opacity > 0 and self.split < 1.0

    def split_column(self) -> int:
        return split_column(self.result.shape[1], self.split)

    def composite(self) -> np.ndarray:
        """The pixels the canvas shows (same-size results only)."""
        return composite_view(self.original, self.result, self.opacity, self.visible,
                              self.split, self.peek)

    def accept(self, mask: Optional[np.ndarray] = None) -> Optional[ImagePatch]:
        """Accept at the current opacity (visibility, split and peek do not matter)."""
        return accept_patch(self.original, self.result, self.opacity, mask)


__all__ = ["split_column", "blend", "composite_view", "ImagePatch", "accept_patch",
           "InPlaceAccept", "accept_in_place", "CanvasState", "accept_on_canvas", "ResultLayer"]
