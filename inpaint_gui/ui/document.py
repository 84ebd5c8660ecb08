"""The edited document: image, mask, outpaint margins, result layers and undo history.

Design (napari style): the data are plain numpy arrays owned by :class:`Document`; views
(canvas items, docks, the models GUI) subscribe to its signals and never own pixels.

* ``image``  RGB HxWx3 uint8 or uint16, exactly as loaded (never reduced to 8 bit here);
  treated as immutable — replacing it (e.g. accepting a result) swaps the array.
* ``alpha``  HxW (same dtype) or None, kept aside like the engine does.
* ``mask``   uint8 HxW, 255 = fill; edited *in place* by the tools (the engine takes it as is).
* ``margins`` :class:`~.margins.Margins` (top, left, bottom, right) canvas extension; the
  added area is always part of the fill region (see :meth:`Document.canvas_arrays`).

Every edit is one undo item on :attr:`Document.undo_stack` (a QUndoStack). Mask edits are
stored as :class:`MaskPatch` (bbox + old/new pixels of that bbox, zlib-compressed), never
whole-image copies.
"""
from __future__ import annotations

import os
import zlib
from typing import Callable, List, Optional, Tuple

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from . import fileio
from .brush import BBox, clip_bbox, dab_bbox, diff_bbox, stamp, union_bbox
from .margins import Margins
from .project import ProjectState, ResultEntry, load_project, save_project

MAX_CANVAS_SIDE = 32000
EDIT_TILE = 128  # backup granularity of in-place mask gestures


class MaskPatch:
    """Undo data of one mask edit: ``bbox`` = (x0, y0, x1, y1) and the old/new pixels.

    The pixels are zlib-compressed (masks are mostly flat), so even a stroke across a
    24-megapixel image costs only kilobytes in the history."""

    __slots__ = ("bbox", "shape", "_old", "_new")

    def __init__(self, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        assert old.shape == new.shape == (bbox[3] - bbox[1], bbox[2] - bbox[0])
        self.bbox = tuple(int(v) for v in bbox)
        self.shape = old.shape
        self._old = zlib.compress(np.ascontiguousarray(old, np.uint8).data, 1)
        self._new = zlib.compress(np.ascontiguousarray(new, np.uint8).data, 1)

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


class MaskPatchCommand(QUndoCommand):
    """One mask gesture (stroke, rectangle, lasso, mask operation)."""

    def __init__(self, doc: "Document", patch: MaskPatch, text: str, applied: bool) -> None:
        super().__init__(text)
        self.doc = doc
        self.patch = patch
        self._skip_redo = applied

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.doc._write_mask(self.patch.bbox, self.patch.new)

    def undo(self) -> None:
        self.doc._write_mask(self.patch.bbox, self.patch.old)


class MarginsCommand(QUndoCommand):
    ID = 0x4D52

    def __init__(self, doc: "Document", old: Margins, new: Margins, text: str,
                 merge_key: int = 0) -> None:
        super().__init__(text)
        self.doc, self.old, self.new, self.merge_key = doc, old, new, merge_key

    def id(self) -> int:  # noqa: A003 - Qt API
        return self.ID if self.merge_key else -1

    def mergeWith(self, other) -> bool:  # noqa: N802 - Qt API
        """Consecutive edits with the same non-zero ``merge_key`` (one spin-box editing
        session) become one undo item."""
        if not (isinstance(other, MarginsCommand) and other.merge_key
                and other.merge_key == self.merge_key):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc._apply_margins(self.new)

    def undo(self) -> None:
        self.doc._apply_margins(self.old)


class _State:
    """A snapshot of the document's arrays (image/alpha by reference, mask compressed)."""

    __slots__ = ("image", "alpha", "mask_shape", "mask_z", "margins")

    def __init__(self, image, alpha, mask, margins) -> None:
        self.image, self.alpha, self.margins = image, alpha, margins
        self.mask_shape = mask.shape
        self.mask_z = zlib.compress(np.ascontiguousarray(mask).data, 1)

    def mask(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.mask_z), np.uint8).reshape(
            self.mask_shape).copy()


class StateCommand(QUndoCommand):
    """Replaces image/alpha/mask/margins at once (accepting a result, resizing)."""

    def __init__(self, doc: "Document", old: _State, new: _State, text: str,
                 on_redo: Optional[Callable[[], None]] = None,
                 on_undo: Optional[Callable[[], None]] = None) -> None:
        super().__init__(text)
        self.doc, self.old, self.new = doc, old, new
        self.on_redo, self.on_undo = on_redo, on_undo

    def redo(self) -> None:
        self.doc._restore_state(self.new)
        if self.on_redo:
            self.on_redo()

    def undo(self) -> None:
        self.doc._restore_state(self.old)
        if self.on_undo:
            self.on_undo()


class ImagePatchCommand(QUndoCommand):
    """Same-size image edit stored as a patch (``result_layer.ImagePatch``: bbox, old, new,
    ``apply(image)`` / ``revert(image)`` returning new arrays)."""

    def __init__(self, doc: "Document", patch, text: str) -> None:
        super().__init__(text)
        self.doc, self.patch = doc, patch

    def redo(self) -> None:
        self.doc._swap_image(self.patch.apply(self.doc.image, inplace=False))

    def undo(self) -> None:
        self.doc._swap_image(self.patch.revert(self.doc.image, inplace=False))


# --------------------------------------------------------------------------- mask ops
def _mask_ops():
    try:
        from inpaint_gui.engine import maskops  # noqa: WPS433
        return maskops
    except ImportError:
        return None


def _ellipse(px: int):
    import cv2
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))


def mask_op(name: str, mask: np.ndarray, px: int = 0) -> np.ndarray:
    """Apply a mask operation (engine ``maskops`` when available, OpenCV otherwise)."""
    ops = _mask_ops()
    if name == "invert":
        return ops.invert(mask) if ops and hasattr(ops, "invert") else 255 - mask
    if name == "clear":
        return np.zeros_like(mask)
    if name == "fill":
        return np.full_like(mask, 255)
    px = int(px)
    if px <= 0:
        return mask.copy()
    if ops is not None and hasattr(ops, name):
        return np.ascontiguousarray(getattr(ops, name)(mask, px), dtype=np.uint8)
    import cv2
    if name == "grow":
        return cv2.dilate(mask, _ellipse(px))
    if name == "shrink":
        return cv2.erode(mask, _ellipse(px))
    if name == "feather":
        k = 2 * px + 1
        return cv2.GaussianBlur(mask, (k, k), px / 2.0)
    raise ValueError(f"unknown mask operation {name!r}")


class Document(QObject):
    """See the module docstring. All signals are emitted in the GUI thread."""

    reset = Signal()                 # a different document was loaded: rebind + fit view
    image_changed = Signal()         # image/alpha/mask arrays replaced (shape may change)
    mask_changed = Signal(object)    # (x0, y0, x1, y1) of changed mask pixels
    mask_committed = Signal(object)  # bbox: a mask gesture/operation became an undo item
    margins_changed = Signal(object)  # Margins
    results_changed = Signal()       # results list or an entry's accepted flag changed
    path_changed = Signal()          # source/project/result path or name changed
    modified_changed = Signal(bool)  # unsaved changes appeared / disappeared

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._image = np.zeros((0, 0, 3), np.uint8)
        self._alpha: Optional[np.ndarray] = None
        self._mask = np.zeros((0, 0), np.uint8)
        self._margins = Margins()
        self.original: Optional[np.ndarray] = None
        self.original_alpha: Optional[np.ndarray] = None
        self.exif = None
        self.icc = None
        self.source_format: Optional[str] = None
        self.source_path: Optional[str] = None
        self.project_path: Optional[str] = None
        self.result_path: Optional[str] = None
        self.name = "Untitled"
        self.results: List[ResultEntry] = []
        self.extra: dict = {}
        self.source_bytes: Optional[bytes] = None  # file bytes of the opened image
        self._edit_backup: Optional[dict] = None
        self._edit_bbox: Optional[BBox] = None
        self._force_modified = False
        self.revision = 0  # bumped on every change (autosave uses it)
        for sig in (self.image_changed, self.mask_changed, self.margins_changed,
                    self.results_changed):
            sig.connect(self._bump_revision)

    def _bump_revision(self, *_a) -> None:
        self.revision += 1

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(self.is_modified())

    def mark_modified(self) -> None:
        """Flag unsaved work that is not in the undo history (e.g. recovered after a crash)."""
        if not self._force_modified:
            self._force_modified = True
            self.modified_changed.emit(True)

    def mark_clean(self) -> None:
        """Everything is saved: the current undo index becomes the clean state."""
        was = self.is_modified()
        self._force_modified = False
        self.undo_stack.setClean()
        if was:
            self.modified_changed.emit(False)

    # ------------------------------------------------------------------ properties
    @property
    def image(self) -> np.ndarray:
        return self._image

    @property
    def alpha(self) -> Optional[np.ndarray]:
        return self._alpha

    @property
    def mask(self) -> np.ndarray:
        return self._mask

    @property
    def margins(self) -> Margins:
        return self._margins

    @property
    def height(self) -> int:
        return int(self._image.shape[0])

    @property
    def width(self) -> int:
        return int(self._image.shape[1])

    @property
    def bit_depth(self) -> int:
        return 16 if self._image.dtype == np.uint16 else 8

    def is_empty(self) -> bool:
        return self._image.size == 0

    def is_modified(self) -> bool:
        return self._force_modified or not self.undo_stack.isClean()

    def mask_is_empty(self) -> bool:
        return not bool(self._mask.any())

    def canvas_shape(self) -> Tuple[int, int]:
        return self._margins.canvas_size(self.height, self.width)

    def canvas_arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """(image, mask) on the extended canvas: margins are zero pixels with mask 255."""
        m = self._margins
        if m.is_zero():
            return self._image, self._mask
        ch, cw = self.canvas_shape()
        img = np.zeros((ch, cw, 3), self._image.dtype)
        img[m.top:m.top + self.height, m.left:m.left + self.width] = self._image
        msk = np.full((ch, cw), 255, np.uint8)
        msk[m.top:m.top + self.height, m.left:m.left + self.width] = self._mask
        return img, msk

    def undo_memory_bytes(self) -> int:
        """Bytes held by the mask patches of the undo history."""
        total = 0
        for i in range(self.undo_stack.count()):
            cmd = self.undo_stack.command(i)
            total += _command_bytes(cmd)
        return total

    # ------------------------------------------------------------------ loading
    def set_image_data(self, rgb: np.ndarray, alpha: Optional[np.ndarray] = None, *,
                       path: Optional[str] = None, exif=None, icc=None,
                       fmt: Optional[str] = None, name: Optional[str] = None,
                       mask: Optional[np.ndarray] = None, margins=None,
                       results: Optional[List[ResultEntry]] = None) -> None:
        """Start a new document from arrays (clears history; mask/margins/results optional)."""
        rgb = _check_image(rgb)
        if alpha is not None:
            alpha = np.ascontiguousarray(alpha)
            if alpha.shape != rgb.shape[:2]:
                raise ValueError("alpha must be HxW like the image")
        if mask is None:
            mask = np.zeros(rgb.shape[:2], np.uint8)
        else:
            mask = np.ascontiguousarray(mask, dtype=np.uint8).copy()
            if mask.shape != rgb.shape[:2]:
                raise ValueError("mask must be HxW like the image")
        self._abandon_gesture()
        self.undo_stack.clear()
        self._image, self._alpha, self._mask = rgb, alpha, mask
        self._margins = Margins()
        self._margins = self.clamp_margins(margins or Margins())
        self.original, self.original_alpha = rgb, alpha
        self.exif, self.icc, self.source_format = exif, icc, fmt
        self.source_path = os.path.abspath(path) if path else None
        self.project_path = None
        self.result_path = None
        self.name = name or (os.path.basename(path) if path else "Untitled")
        self.results = list(results or [])
        self.extra = {}
        self.source_bytes = None
        self._edit_backup = None
        self._edit_bbox = None
        self.mark_clean()
        self.image_changed.emit()
        self.margins_changed.emit(self._margins)
        self.results_changed.emit()
        self.path_changed.emit()
        self.reset.emit()

    def load_image(self, path: str) -> None:
        li, data = fileio.load_image_with_source(path)
        self.set_image_data(li.rgb, li.alpha, path=path, exif=li.exif, icc=li.icc,
                            fmt=li.format or None)
        self.source_bytes = data

    def to_project_state(self) -> ProjectState:
        return ProjectState(image=self._image, mask=self._mask, alpha=self._alpha,
                            margins=self._margins, original=self.original,
                            original_alpha=self.original_alpha, source_path=self.source_path,
                            source_format=self.source_format, exif=self.exif, icc=self.icc,
                            results=list(self.results), extra=dict(self.extra),
                            source_bytes=self.source_bytes)

    def save_project(self, path: str) -> None:
        save_project(path, self.to_project_state())
        self.project_path = os.path.abspath(path)
        self.mark_clean()
        self.path_changed.emit()

    def load_project(self, path: str) -> None:
        st = load_project(path)
        self.set_image_data(st.image, st.alpha, path=st.source_path, exif=st.exif, icc=st.icc,
                            fmt=st.source_format, name=os.path.basename(path), mask=st.mask,
                            margins=st.margins, results=st.results)
        if st.original is not None:
            self.original, self.original_alpha = st.original, st.original_alpha
        self.extra = dict(st.extra)
        self.source_bytes = st.source_bytes
        self.project_path = os.path.abspath(path)
        self.path_changed.emit()

    # ------------------------------------------------------------------ mask editing
    def begin_mask_edit(self) -> None:
        """Start a gesture that edits ``mask`` in place.

        Call :meth:`backup_mask_region` before writing a region (or use :meth:`paint_dabs`),
        then :meth:`mask_edited`; :meth:`end_mask_edit` pushes one undo item. Only touched
        tiles are backed up, so starting a stroke on a huge image costs nothing."""
        self._edit_backup = {}
        self._edit_bbox = None

    @property
    def editing_mask(self) -> bool:
        return self._edit_backup is not None

    def backup_mask_region(self, bbox: Optional[BBox]) -> None:
        if bbox is None or self._edit_backup is None:
            return
        T = EDIT_TILE
        x0, y0, x1, y1 = bbox
        for ty in range(y0 // T, (y1 - 1) // T + 1):
            for tx in range(x0 // T, (x1 - 1) // T + 1):
                if (ty, tx) not in self._edit_backup:
                    self._edit_backup[(ty, tx)] = self._mask[ty * T:(ty + 1) * T,
                                                             tx * T:(tx + 1) * T].copy()

    def paint_dabs(self, dabs, hardness: float = 1.0, erase: bool = False) -> Optional[BBox]:
        """Stamp ``dabs`` [(x, y, radius), ...] into the mask during a gesture (no-op when
        no gesture is open, e.g. after the mask was replaced mid-stroke)."""
        if self._edit_backup is None:
            return None
        h, w = self._mask.shape
        bbox = None
        for cx, cy, r in dabs:
            b = clip_bbox(dab_bbox(cx, cy, r), w, h)
            if b is None:
                continue
            self.backup_mask_region(b)
            stamp(self._mask, cx, cy, r, hardness, erase)
            bbox = union_bbox(bbox, b)
        self.mask_edited(bbox)
        return bbox

    def mask_edited(self, bbox: Optional[BBox]) -> None:
        """Tell views that ``mask[bbox]`` was changed in place (during a gesture)."""
        if bbox is None:
            return
        self._edit_bbox = union_bbox(self._edit_bbox, bbox)
        self.mask_changed.emit(bbox)

    def end_mask_edit(self, text: str) -> Optional[MaskPatch]:
        """Finish the gesture: push one undo item holding only the changed bbox."""
        backup = self._edit_backup
        self._edit_backup, self._edit_bbox = None, None
        if not backup:
            return None
        T = EDIT_TILE
        bbox = None
        for (ty, tx), old_tile in backup.items():
            cur = self._mask[ty * T:(ty + 1) * T, tx * T:(tx + 1) * T]
            sub = diff_bbox(old_tile, cur)
            if sub is not None:
                bbox = union_bbox(bbox, (tx * T + sub[0], ty * T + sub[1],
                                         tx * T + sub[2], ty * T + sub[3]))
        if bbox is None:
            return None
        x0, y0, x1, y1 = bbox
        new = self._mask[y0:y1, x0:x1]
        old = new.copy()
        for (ty, tx), old_tile in backup.items():
            ax, ay = max(tx * T, x0), max(ty * T, y0)
            bx, by = min(tx * T + old_tile.shape[1], x1), min(ty * T + old_tile.shape[0], y1)
            if ax < bx and ay < by:
                old[ay - y0:by - y0, ax - x0:bx - x0] = old_tile[ay - ty * T:by - ty * T,
                                                                 ax - tx * T:bx - tx * T]
        patch = MaskPatch(bbox, old, new)
        self.undo_stack.push(MaskPatchCommand(self, patch, text, applied=True))
        self.mask_committed.emit(patch.bbox)
        return patch

    def _abandon_gesture(self) -> None:
        """The mask array is being replaced: an in-progress gesture cannot be kept."""
        self._edit_backup, self._edit_bbox = None, None

    def cancel_mask_edit(self) -> None:
        """Abort the gesture and restore the pixels it changed (no undo item)."""
        backup = self._edit_backup
        self._edit_backup, self._edit_bbox = None, None
        if not backup:
            return
        T = EDIT_TILE
        bbox = None
        for (ty, tx), old_tile in backup.items():
            self._mask[ty * T:ty * T + old_tile.shape[0], tx * T:tx * T + old_tile.shape[1]] = old_tile
            bbox = union_bbox(bbox, (tx * T, ty * T, tx * T + old_tile.shape[1],
                                     ty * T + old_tile.shape[0]))
        self.mask_changed.emit(bbox)

    def apply_mask_region(self, bbox: Optional[BBox], new_region: Optional[np.ndarray],
                          text: str) -> Optional[MaskPatch]:
        """Replace ``mask[bbox]`` by ``new_region`` as one undo item."""
        if bbox is None or new_region is None:
            return None
        x0, y0, x1, y1 = bbox
        patch = MaskPatch(bbox, self._mask[y0:y1, x0:x1], new_region)
        self.undo_stack.push(MaskPatchCommand(self, patch, text, applied=False))
        self.mask_committed.emit(patch.bbox)
        return patch

    def set_mask(self, new_mask: np.ndarray, text: str = "Set mask") -> Optional[MaskPatch]:
        """Replace the whole mask (one undo item holding only the changed bbox)."""
        new_mask = np.asarray(new_mask)
        if new_mask.shape != self._mask.shape:
            raise ValueError(f"mask shape {new_mask.shape} != image {self._mask.shape}")
        new_mask = new_mask.astype(np.uint8, copy=False)
        b = diff_bbox(self._mask, new_mask)
        if b is None:
            return None
        return self.apply_mask_region(b, new_mask[b[1]:b[3], b[0]:b[2]], text)

    def mask_operation(self, name: str, px: int = 0) -> Optional[MaskPatch]:
        """``grow`` / ``shrink`` / ``feather`` (by ``px``), ``invert``, ``clear``, ``fill``."""
        if self.is_empty():
            return None
        labels = {"grow": f"Grow mask {px}px", "shrink": f"Shrink mask {px}px",
                  "feather": f"Feather mask {px}px", "invert": "Invert mask",
                  "clear": "Clear mask", "fill": "Fill mask"}
        return self.set_mask(mask_op(name, self._mask, px), labels.get(name, name))

    def _write_mask(self, bbox: BBox, values: np.ndarray) -> None:
        x0, y0, x1, y1 = bbox
        self._mask[y0:y1, x0:x1] = values
        self.mask_changed.emit(tuple(bbox))

    # ------------------------------------------------------------------ margins
    def clamp_margins(self, m) -> Margins:
        m = Margins.coerce(m)
        if self.is_empty():
            return Margins()
        h, w = self.height, self.width
        t = min(m.top, MAX_CANVAS_SIDE - h)
        b = min(m.bottom, MAX_CANVAS_SIDE - h - t)
        l = min(m.left, MAX_CANVAS_SIDE - w)
        r = min(m.right, MAX_CANVAS_SIDE - w - l)
        return Margins(max(t, 0), max(l, 0), max(b, 0), max(r, 0))

    def set_margins(self, m, text: str = "Extend canvas", merge_key: int = 0) -> None:
        """Set the margins as one undo item; consecutive calls with the same non-zero
        ``merge_key`` (e.g. one spin-box editing session) merge into one item."""
        m = self.clamp_margins(m)
        if m == self._margins:
            return
        self.undo_stack.push(MarginsCommand(self, self._margins, m, text, merge_key))

    def preview_margins(self, m) -> None:
        """Change margins live during a drag, without an undo item (see commit_margins)."""
        self._apply_margins(self.clamp_margins(m))

    def commit_margins(self, start: Margins, text: str = "Extend canvas") -> None:
        """End a drag that started at ``start``: one undo item from ``start`` to now."""
        now = self._margins
        if now == start:
            return
        self._margins = start
        self.undo_stack.push(MarginsCommand(self, start, now, text))

    def _apply_margins(self, m: Margins) -> None:
        if m == self._margins:
            return
        self._margins = m
        self.margins_changed.emit(m)

    # ------------------------------------------------------------------ results
    def add_result(self, entry: ResultEntry) -> ResultEntry:
        """Keep a candidate result layer (not undoable; saved in the project)."""
        self.results.append(entry)
        self.results_changed.emit()
        return entry

    def remove_result(self, entry: ResultEntry) -> None:
        self.results = [r for r in self.results if r is not entry]
        self.results_changed.emit()

    def accept_result(self, entry: ResultEntry, text: Optional[str] = None) -> None:
        """Make ``entry.image`` the working image (one undo item).

        The result may have the image's size (inpainting) or the extended canvas size
        (outpainting); either way margins reset to 0 and the mask is cleared."""
        img = _check_image(entry.image)
        if img.dtype != self._image.dtype:
            raise ValueError(f"result dtype {img.dtype} != image dtype {self._image.dtype}")
        alpha = entry.alpha
        if alpha is None and self._alpha is not None:
            if img.shape[:2] == self._alpha.shape:
                alpha = self._alpha
            else:
                m = self._margins
                full = np.iinfo(self._alpha.dtype).max
                alpha = np.full(img.shape[:2], full, self._alpha.dtype)
                if img.shape[:2] == self.canvas_shape():
                    alpha[m.top:m.top + self.height, m.left:m.left + self.width] = self._alpha
        old = _State(self._image, self._alpha, self._mask, self._margins)
        new = _State(img, alpha, np.zeros(img.shape[:2], np.uint8), Margins())
        if not any(r is entry for r in self.results):  # identity: entries hold arrays
            self.results.append(entry)

        def on_redo():
            entry.accepted = True
            self.results_changed.emit()

        def on_undo():
            entry.accepted = False
            self.results_changed.emit()

        self.undo_stack.push(StateCommand(self, old, new, text or f"Accept {entry.name}",
                                          on_redo, on_undo))

    def apply_image_patch(self, patch, text: str = "Accept result",
                          clear_mask: bool = True) -> None:
        """Apply a same-size image patch (bbox + old/new pixels) as one undo item; with
        ``clear_mask`` the mask is cleared in the same undo item."""
        if clear_mask and not self.mask_is_empty():
            self.undo_stack.beginMacro(text)
            self.undo_stack.push(ImagePatchCommand(self, patch, text))
            self.set_mask(np.zeros_like(self._mask), "Clear mask")
            self.undo_stack.endMacro()
        else:
            self.undo_stack.push(ImagePatchCommand(self, patch, text))

    def _swap_image(self, image: np.ndarray) -> None:
        if image.shape != self._image.shape:
            raise ValueError("image patches must keep the image size")
        self._image = image
        self.image_changed.emit()

    def _restore_state(self, st: _State) -> None:
        self._abandon_gesture()
        self._image, self._alpha = st.image, st.alpha
        self._mask = st.mask()
        changed = st.margins != self._margins
        self._margins = st.margins
        self.image_changed.emit()
        if changed:
            self.margins_changed.emit(self._margins)

    # ------------------------------------------------------------------ saving
    def save_result(self, path: str, overwrite: bool = False, quality: int = 95) -> None:
        """Write the working image (with alpha and metadata) via the engine's image I/O."""
        fileio.save_image(path, self._image, alpha=self._alpha, exif=self.exif, icc=self.icc,
                          overwrite=overwrite, quality=quality)
        self.result_path = os.path.abspath(path)
        if self.mask_is_empty() and self._margins.is_zero():
            # nothing but the history would be lost now
            self.mark_clean()
        self.path_changed.emit()

    def export_mask(self, path: str, overwrite: bool = False) -> None:
        fileio.save_mask(path, self._mask, overwrite=overwrite)

    def import_mask(self, path: str, use_alpha: bool = False, resize: bool = False
                    ) -> Optional[MaskPatch]:
        """Load a mask file (or another image's alpha: transparent = fill) as one undo item.
        A mask of another size raises ``fileio.MaskSizeError`` unless ``resize``."""
        m = fileio.load_mask(path, shape=self._mask.shape, use_alpha=use_alpha, resize=resize)
        return self.set_mask(m, "Import mask from alpha" if use_alpha else "Import mask")

    def mask_from_alpha(self) -> Optional[MaskPatch]:
        """Transparent pixels of the image's own alpha become the fill region."""
        if self._alpha is None:
            return None
        a = self._alpha
        if a.dtype == np.uint16:
            a = (a >> 8).astype(np.uint8)
        return self.set_mask(255 - a, "Mask from alpha")


def _check_image(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 RGB, got shape {rgb.shape}")
    if rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be uint8 or uint16, got {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def _command_bytes(cmd) -> int:
    total = 0
    if isinstance(cmd, MaskPatchCommand):
        total += cmd.patch.nbytes
    elif isinstance(cmd, ImagePatchCommand):
        total += int(getattr(cmd.patch, "nbytes", 0))
    elif isinstance(cmd, StateCommand):
        total += len(cmd.old.mask_z) + len(cmd.new.mask_z)
    for i in range(cmd.childCount()):
        total += _command_bytes(cmd.child(i))
    return total
