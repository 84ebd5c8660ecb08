"""Qt-free ``.inpaint`` project files: resume work later.

A project is a zip archive (written atomically, :mod:`inpaint_gui.engine.fsutil`) holding

* ``project.json`` — format tag, version, margins, source path/format, result list, extras;
* ``image.png`` — the current working image (RGB or RGBA, 8 or 16 bit, lossless);
* ``original.png`` — the image as first opened, when it differs from the current one;
* ``mask.png`` — uint8 mask, 255 = fill;
* ``results/NNN.png`` — result layers (accepted or kept candidates);
* ``exif.bin`` / ``icc.icc`` — metadata passed through to saved images.
"""
from __future__ import annotations

import json
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from inpaint_gui.engine.fsutil import atomic_write
from inpaint_gui.engine.imageio import ImageIOError, check_image_size, decode_image, max_pixels

from .margins import Margins

FORMAT_TAG = "inpaint-gui-project"
VERSION = 1


class ProjectError(Exception):
    """A project file could not be read or written; the message is meant for the user."""


@dataclass
class ResultEntry:
    """One result layer: an inpainting/outpainting output kept with the document."""

    image: np.ndarray
    name: str = "Result"
    alpha: Optional[np.ndarray] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    accepted: bool = False
    margins: Margins = Margins()
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass
class ProjectState:
    image: np.ndarray
    mask: np.ndarray
    alpha: Optional[np.ndarray] = None
    margins: Margins = Margins()
    original: Optional[np.ndarray] = None
    original_alpha: Optional[np.ndarray] = None
    source_path: Optional[str] = None
    source_format: Optional[str] = None
    exif: Optional[bytes] = None
    icc: Optional[bytes] = None
    results: List[ResultEntry] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)
    # bytes of the file the image was opened from: stored instead of re-encoding the
    # original pixels (decoding them gives the same arrays); None if unknown
    source_bytes: Optional[bytes] = None


def _encode_png(rgb: np.ndarray, alpha: Optional[np.ndarray] = None) -> bytes:
    import cv2
    if rgb.ndim == 2:
        arr = rgb
    else:
        arr = rgb[..., ::-1]
        if alpha is not None:
            arr = np.dstack([arr, alpha.astype(rgb.dtype)])
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ProjectError("Could not encode image data for the project")
    return buf.tobytes()


def _decode_png(data: bytes, what: str = "image"):
    import cv2
    try:  # the same pixel limit as for image files, checked on the header before decoding
        check_image_size(data, f"the project's {what}")
    except ImageIOError as exc:
        raise ProjectError(str(exc)) from None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ProjectError("The project contains unreadable image data")
    if arr.ndim == 2:
        return arr, None
    alpha = None
    if arr.shape[2] == 4:
        alpha = np.ascontiguousarray(arr[..., 3])
    return np.ascontiguousarray(arr[..., 2::-1]), alpha


def _as_bytes(v) -> Optional[bytes]:
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    return None


def _same_alpha(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a is b or (a.shape == b.shape and np.array_equal(a, b))


def _manifest(state: ProjectState) -> Dict[str, Any]:
    return {
        "format": FORMAT_TAG,
        "version": VERSION,
        "image": {"file": "image.png", "dtype": str(state.image.dtype),
                  "shape": list(state.image.shape), "alpha": state.alpha is not None},
        "mask": {"file": "mask.png", "shape": list(state.mask.shape)},
        "margins": list(Margins.coerce(state.margins)),
        "source_path": state.source_path,
        "source_format": state.source_format,
        "results": [],
        "extra": state.extra,
    }


def _image_is_original(state: ProjectState) -> bool:
    o = state.original
    return o is not None and (o is state.image or (
        o.shape == state.image.shape and o.dtype == state.image.dtype
        and np.array_equal(o, state.image)))


def _write_images(z: zipfile.ZipFile, state: ProjectState, manifest: Dict[str, Any]) -> None:
    """The source file (when known) and the working and original images, each stored once:
    an image equal to the decoded source file is not stored again."""
    src = state.source_bytes if state.original is not None else None
    if src:
        z.writestr("source.bin", src)
        manifest["source_file"] = "source.bin"
    image_is_original = _image_is_original(state)
    if src and image_is_original and _same_alpha(state.alpha, state.original_alpha):
        manifest["image"]["file"] = None  # = the decoded source file
    else:
        z.writestr("image.png", _encode_png(state.image, state.alpha))
    if not image_is_original and state.original is not None:
        if src:
            manifest["original"] = {"file": None}
        else:
            z.writestr("original.png", _encode_png(state.original, state.original_alpha))
            manifest["original"] = {"file": "original.png"}


def _write_members(f, state: ProjectState) -> None:
    manifest = _manifest(state)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
        _write_images(z, state, manifest)
        z.writestr("mask.png", _encode_png(state.mask))
        exif, icc = _as_bytes(state.exif), _as_bytes(state.icc)
        if exif:
            z.writestr("exif.bin", exif)
            manifest["exif"] = "exif.bin"
        if icc:
            z.writestr("icc.icc", icc)
            manifest["icc"] = "icc.icc"
        for i, r in enumerate(state.results):
            name = f"results/{i:03d}.png"
            z.writestr(name, _encode_png(r.image, r.alpha))
            manifest["results"].append({
                "file": name, "name": r.name, "meta": r.meta, "accepted": r.accepted,
                "margins": list(Margins.coerce(r.margins)), "id": r.id})
        z.writestr("project.json", json.dumps(manifest, indent=1, default=str))


def save_project(path: str, state: ProjectState) -> None:
    """Write ``state`` to ``path`` atomically (an existing file is replaced only on success)."""
    try:
        atomic_write(os.fspath(path), lambda f: _write_members(f, state))
    except (OSError, ValueError) as exc:
        raise ProjectError(f"Could not save the project: {exc}") from exc


#: Largest member a project may hold, uncompressed: a project's PNGs stay within the image
#: pixel limit (at most 8 bytes a pixel, 16-bit RGBA), project.json is small.
MAX_MANIFEST_BYTES = 64 << 20


def _max_member_bytes() -> int:
    limit = max_pixels()
    return 8 * limit + (64 << 20) if limit else 1 << 62


def _read(z: zipfile.ZipFile, name: str, limit: Optional[int] = None) -> bytes:
    """A member's bytes, refused before decompressing when it declares more than ``limit``."""
    info = z.getinfo(name)
    limit = _max_member_bytes() if limit is None else limit
    if info.file_size > limit:
        raise ProjectError(f"The project's {name} is too large ({info.file_size / 1e9:.1f} GB "
                           "uncompressed); it is damaged or not a real project")
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ProjectError(f"The project's {name} is larger than its directory says; "
                           "it is damaged or not a real project")
    return data


def _read_images(z: zipfile.ZipFile, manifest: Dict[str, Any]):
    """(image, alpha, original, original_alpha, source bytes) of an open project."""
    source_bytes = _read(z, manifest["source_file"]) if manifest.get("source_file") else None
    src_doc = None
    if source_bytes is not None:
        src_doc = decode_image(source_bytes, manifest.get("source_path") or "source")
    if manifest["image"].get("file"):
        image, alpha = _decode_png(_read(z, manifest["image"]["file"]))
    elif src_doc is not None:
        image, alpha = src_doc.rgb, src_doc.alpha
    else:
        raise ProjectError("The project has no image")
    if list(image.shape) != list(manifest["image"]["shape"]):
        raise ProjectError("The project's image does not have the recorded size")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    original = original_alpha = None
    if "original" in manifest:
        if manifest["original"].get("file"):
            original, original_alpha = _decode_png(_read(z, manifest["original"]["file"]),
                                                   "original image")
        elif src_doc is not None:
            original, original_alpha = src_doc.rgb, src_doc.alpha
    elif src_doc is not None:
        original, original_alpha = image, alpha
    return image, alpha, original, original_alpha, source_bytes


def _read_mask(z: zipfile.ZipFile, manifest: Dict[str, Any], shape) -> np.ndarray:
    mask, _ = _decode_png(_read(z, manifest["mask"]["file"]), "mask")
    if mask.ndim == 3:
        mask = mask[..., 0]
    mask = np.ascontiguousarray(mask.astype(np.uint8))
    if mask.shape != shape[:2]:
        raise ProjectError("The project's mask does not match its image")
    return mask


def _read_results(z: zipfile.ZipFile, manifest: Dict[str, Any]) -> List[ResultEntry]:
    results = []
    for r in manifest.get("results", []):
        rimg, ralpha = _decode_png(_read(z, r["file"]), "result layer")
        results.append(ResultEntry(image=rimg, alpha=ralpha, name=r.get("name", "Result"),
                                   meta=r.get("meta") or {}, accepted=bool(r.get("accepted")),
                                   margins=Margins.coerce(r.get("margins", (0, 0, 0, 0))),
                                   id=r.get("id") or uuid.uuid4().hex[:12]))
    return results


def _read_project(z: zipfile.ZipFile) -> ProjectState:
    try:
        manifest = json.loads(_read(z, "project.json", MAX_MANIFEST_BYTES).decode("utf-8"))
    except KeyError:
        raise ProjectError("This file is not an inpaint project (no project.json)") from None
    if manifest.get("format") != FORMAT_TAG:
        raise ProjectError("This file is not an inpaint project")
    if int(manifest.get("version", 0)) > VERSION:
        raise ProjectError("This project was written by a newer version of the app")
    image, alpha, original, original_alpha, source_bytes = _read_images(z, manifest)
    mask = _read_mask(z, manifest, image.shape)
    exif = _read(z, manifest["exif"], MAX_MANIFEST_BYTES) if manifest.get("exif") else None
    icc = _read(z, manifest["icc"], MAX_MANIFEST_BYTES) if manifest.get("icc") else None
    return ProjectState(image=image, mask=mask, alpha=alpha,
                        margins=Margins.coerce(manifest.get("margins", (0, 0, 0, 0))),
                        original=original, original_alpha=original_alpha,
                        source_path=manifest.get("source_path"),
                        source_format=manifest.get("source_format"), exif=exif, icc=icc,
                        results=_read_results(z, manifest), extra=manifest.get("extra") or {},
                        source_bytes=source_bytes)


def load_project(path: str) -> ProjectState:
    """Read a project. Every image in it is held to the same pixel limit as image files
    (checked on its header, before decoding), and no member may unpack to more than an image
    at that limit could take."""
    try:
        with zipfile.ZipFile(os.fspath(path), "r") as z:
            return _read_project(z)
    except ProjectError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad zip, missing member, undecodable data
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
            raise ProjectError(f"Could not open the project: {exc}") from exc
        raise ProjectError(f"The project file is damaged or incomplete: {exc}") from exc
