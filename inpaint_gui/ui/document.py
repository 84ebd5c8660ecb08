"""The edited document: image, mask, outpaint margins, result layers and undo history.

Design (napari style): the data are plain numpy arrays owned by :class:`Document`; views
(canvas items, docks, the models GUI) subscribe to its signals and never own pixels. What an
edit changes is worked out by the Qt-free :mod:`inpaint_gui.core` (strokes and shapes:
``core.brush``; mask patches, gestures and operations: ``core.mask_edit``; margins:
``core.margins``; accepting a result: ``core.result``; files: ``core.project``); this module
adds the signals and turns each edit into undo commands.

* ``image``  RGB HxWx3 uint8 or uint16, exactly as loaded (never reduced to 8 bit here);
  treated as immutable — replacing it (e.g. accepting a result) swaps the array.
* ``alpha``  HxW (same dtype) or None, kept aside like the engine does.
* ``mask``   uint8 HxW, 255 = fill; edited *in place* by the tools (the engine takes it as is).
* ``margins`` :class:`~inpaint_gui.core.margins.Margins` (top, left, bottom, right) canvas
  extension; the added area is always part of the fill region (:meth:`Document.canvas_arrays`).

Every edit is one undo item on :attr:`Document.undo_stack` (a QUndoStack), stored as patches
(:class:`~inpaint_gui.core.mask_edit.MaskPatch`, :class:`~inpaint_gui.core.result.ImagePatch`:
box + old/new pixels of that box), never whole-image copies. Boxes are the engine's
``(y0, x0, y1, x1)``.
"""
from __future__ import annotations

import os
import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from inpaint_gui.core.brush import BBox, Dab, clip_bbox, dab_bbox, stamp, union_bbox
from inpaint_gui.core.margins import Margins, clamp_margins, extend_canvas
from inpaint_gui.core.mask_edit import MaskGesture, MaskPatch, mask_op, mask_op_label
from inpaint_gui.core.project import ProjectState, ResultEntry, load_project, save_project
from inpaint_gui.core.result import CanvasState, ImagePatch, accept_in_place, accept_on_canvas

from . import fileio


class MaskPatchCommand(QUndoCommand):
    """One mask gesture (stroke, rectangle, lasso, mask operation) or an accept's mask part."""

    def __init__(self, doc: "Document", patch: MaskPatch, text: str, applied: bool) -> None:
        super().__init__(text)
        self.doc = doc
        self.patch = patch
        self._skip_redo = applied

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.doc._write_mask(self.patch, new=True)

    def undo(self) -> None:
        self.doc._write_mask(self.patch, new=False)


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

    def __init__(self, st: CanvasState) -> None:
        self.image, self.alpha, self.margins = st.image, st.alpha, st.margins
        self.mask_shape = st.mask.shape
        self.mask_z = zlib.compress(np.ascontiguousarray(st.mask).data, 1)

    def mask(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.mask_z), np.uint8).reshape(
            self.mask_shape).copy()


class StateCommand(QUndoCommand):
    """Replaces image/alpha/mask/margins at once (accepting an outpainting result)."""

    def __init__(self, doc: "Document", old: _State, new: _State, text: str) -> None:
        super().__init__(text)
        self.doc, self.old, self.new = doc, old, new

    def redo(self) -> None:
        self.doc._restore_state(self.new)

    def undo(self) -> None:
        self.doc._restore_state(self.old)


class ImagePatchCommand(QUndoCommand):
    """Same-size image edit stored as a patch (:class:`~inpaint_gui.core.result.ImagePatch`)."""

    def __init__(self, doc: "Document", patch: ImagePatch, text: str) -> None:
        super().__init__(text)
        self.doc, self.patch = doc, patch

    def redo(self) -> None:
        self.doc._swap_image(self.patch.apply(self.doc.image, inplace=False))

    def undo(self) -> None:
        self.doc._swap_image(self.patch.revert(self.doc.image, inplace=False))


class MarkAcceptedCommand(QUndoCommand):
    """Flags a result entry as accepted (inside the accept's undo item, so undo clears it)."""

    def __init__(self, doc: "Document", entry: ResultEntry) -> None:
        super().__init__("mark accepted")
        self.doc, self.entry = doc, entry

    def redo(self) -> None:
        self.doc._set_accepted(self.entry, True)

    def undo(self) -> None:
        self.doc._set_accepted(self.entry, False)


class Document(QObject):
    """See the module docstring. All signals are emitted in the GUI thread."""

    reset = Signal()                 # a different document was loaded: rebind + fit view
    image_changed = Signal()         # image/alpha/mask arrays replaced (shape may change)
    mask_changed = Signal(object)    # (y0, x0, y1, x1) of changed mask pixels
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
        self._gesture: Optional[MaskGesture] = None
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
        return extend_canvas(self._image, self._mask, self._margins)

    def _canvas_state(self) -> CanvasState:
        return CanvasState(self._image, self._alpha, self._mask, self._margins)

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
        self._gesture = None  # the mask array is replaced: an open gesture cannot be kept
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
        tiles are backed up (:class:`~inpaint_gui.core.mask_edit.MaskGesture`)."""
        self._gesture = MaskGesture()

    @property
    def editing_mask(self) -> bool:
        return self._gesture is not None

    def backup_mask_region(self, bbox: Optional[BBox]) -> None:
        if self._gesture is not None:
            self._gesture.backup(self._mask, bbox)

    def paint_dabs(self, dabs: Sequence[Dab], hardness: float = 1.0, erase: bool = False
                   ) -> Optional[BBox]:
        """Stamp ``dabs`` [(x, y, radius), ...] into the mask during a gesture (no-op when
        no gesture is open, e.g. after the mask was replaced mid-stroke)."""
        if self._gesture is None:
            return None
        bbox = None
        for cx, cy, r in dabs:
            b = clip_bbox(dab_bbox(cx, cy, r), self._mask.shape)
            if b is None:
                continue
            self._gesture.backup(self._mask, b)
            stamp(self._mask, cx, cy, r, hardness, erase)
            bbox = union_bbox(bbox, b)
        self.mask_edited(bbox)
        return bbox

    def mask_edited(self, bbox: Optional[BBox]) -> None:
        """Tell views that ``mask[bbox]`` was changed in place (during a gesture)."""
        if bbox is not None:
            self.mask_changed.emit(bbox)

    def end_mask_edit(self, text: str) -> Optional[MaskPatch]:
        """Finish the gesture: push one undo item holding only the changed box."""
        gesture, self._gesture = self._gesture, None
        patch = gesture.finish(self._mask) if gesture is not None else None
        if patch is None:
            return None
        self.undo_stack.push(MaskPatchCommand(self, patch, text, applied=True))
        self.mask_committed.emit(patch.bbox)
        return patch

    def cancel_mask_edit(self) -> None:
        """Abort the gesture and restore the pixels it changed (no undo item)."""
        gesture, self._gesture = self._gesture, None
        bbox = gesture.restore(self._mask) if gesture is not None else None
        if bbox is not None:
            self.mask_changed.emit(bbox)

    def apply_mask_region(self, bbox: Optional[BBox], new_region: Optional[np.ndarray],
                          text: str) -> Optional[MaskPatch]:
        """Replace ``mask[bbox]`` by ``new_region`` as one undo item."""
        if bbox is None or new_region is None:
            return None
        y0, x0, y1, x1 = bbox
        patch = MaskPatch(bbox, self._mask[y0:y1, x0:x1], new_region)
        self.undo_stack.push(MaskPatchCommand(self, patch, text, applied=False))
        self.mask_committed.emit(patch.bbox)
        return patch

    def set_mask(self, new_mask: np.ndarray, text: str = "Set mask") -> Optional[MaskPatch]:
        """Replace the whole mask (one undo item holding only the changed box)."""
        new_mask = np.asarray(new_mask)
        if new_mask.shape != self._mask.shape:
            raise ValueError(f"mask shape {new_mask.shape} != image {self._mask.shape}")
        patch = MaskPatch.between(self._mask, new_mask.astype(np.uint8, copy=False))
        if patch is None:
            return None
        self.undo_stack.push(MaskPatchCommand(self, patch, text, applied=False))
        self.mask_committed.emit(patch.bbox)
        return patch

    def mask_operation(self, name: str, px: int = 0) -> Optional[MaskPatch]:
        """``grow`` / ``shrink`` / ``feather`` (by ``px``), ``invert``, ``clear``, ``fill``."""
        if self.is_empty():
            return None
        return self.set_mask(mask_op(name, self._mask, px), mask_op_label(name, px))

    def _write_mask(self, patch: MaskPatch, new: bool) -> None:
        self.mask_changed.emit(patch.write(self._mask, new))

    # ------------------------------------------------------------------ margins
    def clamp_margins(self, m) -> Margins:
        return clamp_margins(m, self.height, self.width)

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

    def accept_result(self, entry: ResultEntry, opacity: float = 1.0,
                      run_mask: Optional[np.ndarray] = None, text: Optional[str] = None) -> bool:
        """Merge ``entry`` into the document as ONE undo item; False when nothing changes.

        A result of the image's size is blended in at ``opacity`` where its run filled
        (``run_mask > 0``, the mask when the run started; everywhere without one) and that
        part of the mask is cleared: strokes painted during the run stay
        (:func:`~inpaint_gui.core.result.accept_in_place`). A result of the extended canvas'
        size (outpainting) replaces the canvas: margins back to 0, a mask inside the old
        image kept for a later run (:func:`~inpaint_gui.core.result.accept_on_canvas`).
        A stroke in progress is dropped first. ``ValueError`` when the result fits neither."""
        img = _check_image(entry.image)
        if img.dtype != self._image.dtype:
            raise ValueError(f"result dtype {img.dtype} != image dtype {self._image.dtype}")
        text = text or f"Accept {entry.name}"
        if img.shape == self._image.shape:
            step = accept_in_place(self._image, self._mask, img, opacity, run_mask)
            if step is None:
                return False
            if self.editing_mask:  # the accept replaces what the open stroke drew
                self.cancel_mask_edit()
                step = accept_in_place(self._image, self._mask, img, opacity, run_mask)
            commands = [ImagePatchCommand(self, step.image, text)]
            if step.mask is not None:
                commands.append(MaskPatchCommand(self, step.mask, text, applied=False))
        else:
            new = accept_on_canvas(self._canvas_state(), img, entry.alpha)
            if self.editing_mask:
                self.cancel_mask_edit()
                new = accept_on_canvas(self._canvas_state(), img, entry.alpha)
            commands = [StateCommand(self, _State(self._canvas_state()), _State(new), text)]
        if not any(r is entry for r in self.results):  # identity: entries hold arrays
            self.results.append(entry)
        commands.append(MarkAcceptedCommand(self, entry))
        st = self.undo_stack
        st.beginMacro(text)
        try:
            for cmd in commands:
                st.push(cmd)
        finally:
            st.endMacro()
        return True

    def _set_accepted(self, entry: ResultEntry, accepted: bool) -> None:
        entry.accepted = accepted
        self.results_changed.emit()

    def _swap_image(self, image: np.ndarray) -> None:
        if image.shape != self._image.shape:
            raise ValueError("image patches must keep the image size")
        self._image = image
        self.image_changed.emit()

    def _restore_state(self, st: _State) -> None:
        self._gesture = None  # the mask array is replaced: an open gesture cannot be kept
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
        total += cmd.patch.nbytes
    elif isinstance(cmd, StateCommand):
        total += len(cmd.old.mask_z) + len(cmd.new.mask_z)
    for i in range(cmd.childCount()):
        total += _command_bytes(cmd.child(i))
    return total
