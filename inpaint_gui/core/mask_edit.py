"""Qt-free mask editing: undo patches, in-place gestures, mask operations.

* :class:`MaskPatch` — the undo data of one mask edit: its box and the old/new pixels there,
  zlib-compressed (masks are mostly flat), never a whole-mask copy.
* :class:`MaskGesture` — a stroke that edits the mask in place: only the tiles it touches are
  backed up (starting a stroke on a huge image costs nothing); at the end it yields one
  :class:`MaskPatch` of the pixels that changed, or restores them when cancelled.
* :func:`mask_op` — grow / shrink / feather / invert / clear / fill through
  :mod:`inpaint_gui.engine.maskops`.

Boxes are ``(y0, x0, y1, x1)``, half-open (:mod:`.brush`).
"""
from __future__ import annotations

import zlib
from typing import Dict, Optional, Tuple

import numpy as np

from inpaint_gui.engine import maskops

from .brush import BBox, diff_bbox, union_bbox

#: side of the tiles a gesture backs up before it first writes into them
EDIT_TILE = 128

#: mask operations and their undo labels (``px``: the operation's size in pixels)
MASK_OPS = {"grow": "Grow mask {px}px", "shrink": "Shrink mask {px}px",
            "feather": "Feather mask {px}px", "invert": "Invert mask", "clear": "Clear mask",
            "fill": "Fill mask"}


class MaskPatch:
    """Undo data of one mask edit: ``bbox`` = (y0, x0, y1, x1) and the old/new pixels.

    The pixels are zlib-compressed, so even a stroke across a 24-megapixel image costs only
    kilobytes in the history."""

    __slots__ = ("bbox", "shape", "_old", "_new")

    def __init__(self, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        y0, x0, y1, x1 = (int(v) for v in bbox)
        if not old.shape == new.shape == (y1 - y0, x1 - x0):
            raise ValueError(f"patch arrays {old.shape} / {new.shape} do not match the box "
                             f"{bbox}")
        self.bbox = (y0, x0, y1, x1)
        self.shape = old.shape
        self._old = zlib.compress(np.ascontiguousarray(old, np.uint8).data, 1)
        self._new = zlib.compress(np.ascontiguousarray(new, np.uint8).data, 1)

    @classmethod
    def between(cls, old_mask: np.ndarray, new_mask: np.ndarray) -> Optional["MaskPatch"]:
        """The patch that turns ``old_mask`` into ``new_mask`` (None if they are equal)."""
        b = diff_bbox(old_mask, new_mask)
        if b is None:
            return None
        y0, x0, y1, x1 = b
        return cls(b, old_mask[y0:y1, x0:x1], new_mask[y0:y1, x0:x1])

    def _unpack(self, data: bytes) -> np.ndarray:
        return np.frombuffer(zlib.decompress(data), np.uint8).reshape(self.shape)

    @property
    def old(self) -> np.ndarray:
        return self._unpack(self._old)

    @property
    def new(self) -> np.ndarray:
        return self._unpack(self._new)

    @property
    def nbytes(self) -> int:
        return len(self._old) + len(self._new)

    def write(self, mask: np.ndarray, new: bool = True) -> BBox:
        """Write the new (redo) or old (undo) pixels into ``mask`` in place; returns the box."""
        y0, x0, y1, x1 = self.bbox
        mask[y0:y1, x0:x1] = self.new if new else self.old
        return self.bbox


class MaskGesture:
    """Backups of one in-place mask gesture (tiles of :data:`EDIT_TILE` pixels).

    Call :meth:`backup` with the box of every region before writing into it; :meth:`finish`
    gives the patch of what changed, :meth:`restore` puts the old pixels back."""

    def __init__(self) -> None:
        self._tiles: Dict[Tuple[int, int], np.ndarray] = {}

    def backup(self, mask: np.ndarray, bbox: Optional[BBox]) -> None:
        if bbox is None:
            return
        t = EDIT_TILE
        y0, x0, y1, x1 = bbox
        for ty in range(y0 // t, (y1 - 1) // t + 1):
            for tx in range(x0 // t, (x1 - 1) // t + 1):
                if (ty, tx) not in self._tiles:
                    self._tiles[(ty, tx)] = mask[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].copy()

    def _tile_box(self, ty: int, tx: int, tile: np.ndarray) -> BBox:
        t = EDIT_TILE
        return (ty * t, tx * t, ty * t + tile.shape[0], tx * t + tile.shape[1])

    def finish(self, mask: np.ndarray) -> Optional[MaskPatch]:
        """The patch from the backed-up pixels to ``mask`` now, limited to the box of the
        pixels that changed (None when nothing did)."""
        bbox = None
        for (ty, tx), old_tile in self._tiles.items():
            ty0, tx0, ty1, tx1 = self._tile_box(ty, tx, old_tile)
            sub = diff_bbox(old_tile, mask[ty0:ty1, tx0:tx1])
            if sub is not None:
                bbox = union_bbox(bbox, (ty0 + sub[0], tx0 + sub[1], ty0 + sub[2], tx0 + sub[3]))
        if bbox is None:
            return None
        y0, x0, y1, x1 = bbox
        new = mask[y0:y1, x0:x1]
        old = new.copy()
        for (ty, tx), old_tile in self._tiles.items():
            ty0, tx0, ty1, tx1 = self._tile_box(ty, tx, old_tile)
            ay, ax, by, bx = max(ty0, y0), max(tx0, x0), min(ty1, y1), min(tx1, x1)
            if ay < by and ax < bx:
                old[ay - y0:by - y0, ax - x0:bx - x0] = old_tile[ay - ty0:by - ty0,
                                                                 ax - tx0:bx - tx0]
        return MaskPatch(bbox, old, new)

    def restore(self, mask: np.ndarray) -> Optional[BBox]:
        """Write the backed-up pixels back into ``mask``; returns the box they cover."""
        bbox = None
        for (ty, tx), old_tile in self._tiles.items():
            b = self._tile_box(ty, tx, old_tile)
            mask[b[0]:b[2], b[1]:b[3]] = old_tile
            bbox = union_bbox(bbox, b)
        return bbox


def mask_op(name: str, mask: np.ndarray, px: int = 0) -> np.ndarray:
    """A new mask: ``grow`` / ``shrink`` / ``feather`` by ``px`` (a copy for ``px <= 0``),
    ``invert``, ``clear`` or ``fill`` (:mod:`inpaint_gui.engine.maskops`)."""
    if name == "invert":
        return maskops.invert(mask)
    if name == "clear":
        return np.zeros_like(mask)
    if name == "fill":
        return np.full_like(mask, 255)
    if name not in ("grow", "shrink", "feather"):
        raise ValueError(f"unknown mask operation {name!r}")
    px = int(px)
    if px <= 0:
        return mask.copy()
    return getattr(maskops, name)(mask, px)


def mask_op_label(name: str, px: int = 0) -> str:
    """The undo label of :func:`mask_op` ``name``."""
    return MASK_OPS.get(name, name).format(px=px)


__all__ = ["EDIT_TILE", "MASK_OPS", "MaskPatch", "MaskGesture", "mask_op", "mask_op_label"]
