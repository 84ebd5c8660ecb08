"""Reading and writing images and masks without losing what the user cares about.

* ``load_image(path) -> ImageDoc``: PNG, JPEG, WebP, TIFF, BMP. The EXIF orientation is applied
  to the pixels (and reset to 1 in the kept EXIF, so viewers do not rotate the result again);
  16-bit PNG/TIFF stay ``uint16``; grayscale and palette images become RGB; an alpha channel is
  kept aside in ``ImageDoc.alpha`` (same dtype as ``rgb``). EXIF is kept as raw bytes starting
  with ``b"Exif\\0\\0"`` (what Pillow's writers take), the ICC profile as raw bytes.
* ``save_image(path, rgb, alpha, exif, icc, overwrite=False, quality=95)``: the format follows the
  extension (TIFF and 16-bit PNG have their own small writers, as Pillow can write neither
  16-bit RGB nor EXIF sub-IFDs in TIFF). PNG and TIFF keep 16 bits; JPEG, WebP and BMP are
  8-bit formats, so 16-bit data is
  rounded to 8 bits there and an :class:`ImageIOWarning` says so (a warning, not an error: saving
  a 16-bit scan as a JPEG is a legitimate choice). Alpha is written where the format has it
  (PNG, TIFF, WebP, BMP); JPEG drops it with a warning. EXIF and ICC are written for PNG, JPEG,
  WebP and TIFF (BMP cannot hold them: warning). Files are written atomically: to a temporary
  file in the same folder, then renamed over the target, so a crash never leaves a half-written
  image; an existing file is only replaced with ``overwrite=True`` (else ``FileExistsError``).
* ``load_mask(path, shape=None, use_alpha=False, resize=False)``: uint8 HxW, 255 = fill.
  Pixels brighter than mid-grey (any channel > 127, alpha-weighted) are the hole; with
  ``use_alpha`` the transparent pixels (alpha <= 127) are the hole. A mask whose size differs
  from ``shape`` raises :class:`MaskSizeError` unless ``resize=True`` (nearest neighbour).
* ``save_mask(path, mask, overwrite=False)``: 8-bit grayscale, atomically.

Every failure is an :class:`ImageIOError` whose message is one line meant for the user
(missing file, unsupported format, corrupt data, unwritable folder).
"""
from __future__ import annotations

import errno
import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from .fsutil import atomic_write
from .pipeline import MaskSizeError as _PipelineMaskSizeError

#: Pillow format name for each extension we write (and read).
EXTENSIONS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".dib": "BMP",
}
SUPPORTED_EXTENSIONS = tuple(EXTENSIONS)
FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
HIGH_BIT_FORMATS = ("PNG", "TIFF")
_FORMAT_ALIASES = {"MPO": "JPEG"}  # camera JPEGs with an embedded preview report "MPO"
_FORMAT_LIST = "PNG, JPEG, WebP, TIFF or BMP"

_ORIENTATION = 0x0112
# TIFF tags that describe a TIFF's own pixel layout: never carried over as EXIF.
_TIFF_STRUCTURAL = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 286, 287,
    290, 291, 292, 293, 317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 338, 339, 340,
    341, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 34675,
})


class ImageIOError(Exception):
    """An image or mask that cannot be read or written; ``str()`` is one user-readable line."""


class MaskSizeError(ImageIOError, _PipelineMaskSizeError):
    """The mask's size differs from the image's (``mask_shape``/``image_shape`` are (h, w)).

    Also a :class:`inpaint_gui.engine.pipeline.MaskSizeError`, so one ``except`` catches both."""

    def __init__(self, message: str, mask_shape=None, image_shape=None) -> None:
        super().__init__(message)
        self.mask_shape = mask_shape
        self.image_shape = image_shape


class ImageIOWarning(UserWarning):
    """Something was lost on save (bit depth, alpha, metadata) because the format lacks it."""


@dataclass
class ImageDoc:
    """A loaded image: ``rgb`` HxWx3 uint8/uint16 (upright), ``alpha`` HxW same dtype or None,
    ``exif`` raw EXIF (``b"Exif\\0\\0"`` + TIFF structure, orientation reset to 1) or None,
    ``icc`` raw ICC profile or None, ``format`` ("PNG", "JPEG", "WEBP", "TIFF", "BMP"),
    ``path`` where it came from."""

    rgb: np.ndarray
    alpha: Optional[np.ndarray] = None
    exif: Optional[bytes] = None
    icc: Optional[bytes] = None
    format: str = ""
    path: Optional[Path] = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


# ============================================================================ helpers

def _name(path) -> str:
    return os.fspath(path)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:200]


def format_for_path(path) -> str:
    """The format ("PNG", "JPEG", ...) that :func:`save_image` writes for ``path``'s extension."""
    ext = Path(path).suffix.lower()
    fmt = EXTENSIONS.get(ext)
    if fmt is None:
        raise ImageIOError(f"cannot write {_name(path)}: unsupported file extension "
                           f"{ext or '(none)'!r}; use .png, .jpg, .webp, .tif or .bmp")
    return fmt


def lossy_note(path, quality: int = 95) -> Optional[str]:
    """Why pixels written to ``path`` will not read back exactly (JPEG; WebP below quality
    100), in one sentence; None for the lossless formats (PNG, TIFF, BMP, WebP at 100)."""
    fmt = format_for_path(path)
    if fmt == "JPEG":
        kind = "JPEG"
    elif fmt == "WEBP" and int(quality) < 100:
        kind = f"WebP at quality {int(quality)}"
    else:
        return None
    return (f"{kind} is lossy: pixels outside the mask will not come back byte-identical (the "
            "whole picture is re-encoded, so they shift by a few levels); save as PNG, TIFF or "
            "WebP at quality 100 to keep them exactly")


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 with rounding (uint8 passes through)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16, got {arr.dtype}")
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def to_uint16(arr: np.ndarray) -> np.ndarray:
    """uint8 -> uint16 (x * 257, exact inverse of :func:`to_uint8`); uint16 passes through."""
    if arr.dtype == np.uint16:
        return arr
    return arr.astype(np.uint16) * np.uint16(257)


def _sniff_format(data: bytes) -> Optional[str]:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    return None


# ---------------------------------------------------------------------------- EXIF bytes

def _normalise_exif(blob) -> Optional[bytes]:
    """Raw EXIF with the ``Exif\\0\\0`` header (WebP stores it without)."""
    if not blob:
        return None
    blob = bytes(blob)
    if blob.startswith(b"Exif\x00\x00"):
        return blob
    if blob[:4] in (b"II*\x00", b"MM\x00*"):
        return b"Exif\x00\x00" + blob
    return None  # not a TIFF structure: drop rather than write garbage


def exif_orientation(exif: Optional[bytes]) -> int:
    """The orientation tag (1..8) of raw EXIF bytes; 1 if absent or unreadable."""
    pos = _orientation_pos(exif)
    if pos is None:
        return 1
    data, off, endian = pos
    value = struct.unpack(endian + "H", data[off:off + 2])[0]
    return value if 1 <= value <= 8 else 1


def exif_with_orientation(exif: Optional[bytes], value: int = 1) -> Optional[bytes]:
    """A copy of ``exif`` whose orientation tag reads ``value``; patched in place in the bytes,
    so everything else (maker notes, GPS, thumbnails) stays exactly as it was."""
    pos = _orientation_pos(exif)
    if pos is None:
        return exif
    data, off, endian = pos
    buf = bytearray(data)
    buf[off:off + 2] = struct.pack(endian + "H", value)
    return bytes(buf)


def _orientation_pos(exif: Optional[bytes]):
    """(exif bytes, byte offset of the orientation value, endian) or None."""
    if not exif:
        return None
    base = 6 if exif.startswith(b"Exif\x00\x00") else 0
    tiff = exif[base:]
    if tiff[:2] == b"II":
        endian = "<"
    elif tiff[:2] == b"MM":
        endian = ">"
    else:
        return None
    try:
        ifd = struct.unpack(endian + "I", tiff[4:8])[0]
        count = struct.unpack(endian + "H", tiff[ifd:ifd + 2])[0]
        for i in range(count):
            p = ifd + 2 + 12 * i
            tag, typ, n = struct.unpack(endian + "HHI", tiff[p:p + 8])
            if tag == _ORIENTATION and typ == 3 and n == 1:  # SHORT, inline
                return exif, base + p + 8, endian
    except struct.error:
        return None
    return None


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``arr`` (HxW or HxWxC, stored as in the file) upright for EXIF ``orientation``."""
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = arr.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        out = arr.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        out = arr.swapaxes(0, 1)[::-1]
    else:
        return arr
    return np.ascontiguousarray(out)


# ============================================================================ loading

def load_image(path) -> ImageDoc:
    """Read an image file into an :class:`ImageDoc` (upright, RGB, alpha aside).

    Raises :class:`ImageIOError` (missing, unreadable, unsupported or corrupt file)."""
    path = Path(path)
    data = _read_bytes(path)
    return decode_image(data, path)


def _read_bytes(path: Path) -> bytes:
    name = _name(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageIOError(f"cannot read {name}: file not found") from None
    except IsADirectoryError:
        raise ImageIOError(f"cannot read {name}: it is a folder, not an image file") from None
    except PermissionError:
        raise ImageIOError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        raise ImageIOError(f"cannot read {name}: {_one_line(exc)}") from None
    if not data:
        raise ImageIOError(f"cannot read {name}: the file is empty")
    return data


def max_pixels() -> Optional[int]:
    """The largest image (in pixels) this app decodes: Pillow's decompression-bomb limit
    (twice ``PIL.Image.MAX_IMAGE_PIXELS``); None when that check is switched off."""
    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * int(limit) if limit else None


def check_image_size(data: bytes, name: str = "image") -> "tuple[int, int]":
    """(width, height) from the header of an image file's bytes, without decoding its pixels;
    raises :class:`ImageIOError` when the image is larger than :func:`max_pixels` (a small
    file can declare gigabytes of pixels) or the header cannot be read."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as pil:
                w, h = pil.size
    except Image.DecompressionBombError as exc:
        import re
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageIOError(f"cannot read {name}: " + (_too_many_pixels(int(found.group(1)))
                                                      if found else _one_line(exc))) from None
    except Exception as exc:
        raise ImageIOError(f"cannot read {name}: not a readable image ({_one_line(exc)})") from None
    limit = max_pixels()
    if limit and w * h > limit:
        raise ImageIOError(f"cannot read {name}: {w}x{h}, " + _too_many_pixels(w * h))
    return w, h


def _too_many_pixels(pixels: int) -> str:
    return (f"the image has {pixels / 1e6:,.0f} million pixels, more than the limit of "
            f"{(max_pixels() or 0) / 1e6:,.0f} million")


def decode_image(data: bytes, path=None) -> ImageDoc:
    """Decode the bytes of an image file (see :func:`load_image`)."""
    from PIL import Image

    name = _name(path) if path is not None else "image"
    fmt = _sniff_format(data)
    pil = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil = Image.open(io.BytesIO(data))
        fmt = _FORMAT_ALIASES.get(pil.format or "", pil.format or fmt)
    except Image.DecompressionBombError as exc:
        raise ImageIOError(f"cannot read {name}: {_one_line(exc)}") from None
    except Exception:
        pil = None  # Pillow cannot parse the header; OpenCV may still decode it below
    if fmt not in FORMATS:
        if fmt is None:
            raise ImageIOError(f"cannot read {name}: not an image in a supported format "
                               f"({_FORMAT_LIST})")
        raise ImageIOError(f"cannot read {name}: {fmt} images are not supported "
                           f"(use {_FORMAT_LIST})")

    exif = icc = None
    orientation = 1
    try:
        if pil is not None:
            exif, icc = _metadata(pil, fmt)  # before decoding: Pillow rotates TIFFs on load
            orientation = exif_orientation(exif)
        if orientation != 1:
            # Decoders disagree on whether they rotate (Pillow and OpenCV turn TIFFs, not PNGs):
            # decode a copy whose orientation tag reads 1, then turn the pixels here.
            pix = _with_file_orientation_1(data, fmt)
            if pix is not data and pil is not None:
                pil.close()
                pil = Image.open(io.BytesIO(pix))
        else:
            pix = data
        if pil is None or _is_high_bit(pil, pix, fmt):
            rgb, alpha = _decode_cv2(pix, name)
        else:
            rgb, alpha = _decode_pillow(pil, name)
    except ImageIOError:
        raise
    except Exception as exc:
        raise ImageIOError(f"cannot read {name}: the file is corrupt ({_one_line(exc)})") from None
    finally:
        if pil is not None:
            pil.close()
    if orientation != 1:
        rgb = apply_orientation(rgb, orientation)
        alpha = apply_orientation(alpha, orientation) if alpha is not None else None
        exif = exif_with_orientation(exif, 1)
    return ImageDoc(rgb=rgb, alpha=alpha, exif=exif, icc=icc, format=fmt,
                    path=Path(path) if path is not None else None)


def _with_file_orientation_1(data: bytes, fmt: str) -> bytes:
    """The file's bytes with its own orientation tag set to 1 (TIFF IFD0 or PNG eXIf chunk)."""
    if fmt == "TIFF":
        return exif_with_orientation(data, 1) or data
    if fmt == "PNG":
        pos = 8
        while pos + 12 <= len(data):
            length = struct.unpack(">I", data[pos:pos + 4])[0]
            kind = data[pos + 4:pos + 8]
            if kind == b"eXIf":
                payload = data[pos + 8:pos + 8 + length]
                fixed = exif_with_orientation(payload, 1)
                if fixed is payload or fixed is None:
                    return data
                return data[:pos] + _png_chunk(b"eXIf", fixed) + data[pos + 12 + length:]
            if kind == b"IEND":
                break
            pos += 12 + length
    return data


def _is_high_bit(pil, data: bytes, fmt: str) -> bool:
    """More than 8 bits per sample (Pillow would silently truncate 16-bit RGB)."""
    if fmt == "PNG":
        return len(data) > 24 and data[12:16] == b"IHDR" and data[24] == 16
    if fmt == "TIFF":
        bits = getattr(pil, "tag_v2", {}).get(258, 8)
        bits = bits if isinstance(bits, (tuple, list)) else (bits,)
        return max(int(b) for b in bits) > 8 if bits else False
    return pil.mode in ("I;16", "I;16B", "I;16L", "I", "F")


#: Pixels per band when decoded pixels are copied into arrays: whole-image conversions
#: (``convert`` + ``tobytes`` + the array) would hold three more copies of a large photo.
_BAND_PIXELS = 1 << 22


def _bands(h: int, w: int):
    """Row ranges of about :data:`_BAND_PIXELS` pixels covering an h x w image."""
    rows = max(1, _BAND_PIXELS // max(1, w))
    for y in range(0, h, rows):
        yield y, min(h, y + rows)


def _decode_pillow(pil, name: str):
    mode = pil.mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil.load()
            w, h = pil.size
            if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in pil.info:
                rgb = np.empty((h, w, 3), np.uint8)
                alpha = np.empty((h, w), np.uint8)
                for y0, y1 in _bands(h, w):
                    band = np.asarray(pil.crop((0, y0, w, y1)).convert("RGBA"))
                    rgb[y0:y1] = band[..., :3]
                    alpha[y0:y1] = band[..., 3]
                return rgb, alpha
            rgb = np.empty((h, w, 3), np.uint16 if mode.startswith("I;16") else np.uint8)
            for y0, y1 in _bands(h, w):
                band = pil.crop((0, y0, w, y1))
                if mode.startswith("I;16"):
                    rgb[y0:y1] = np.asarray(band).astype(np.uint16)[..., None]
                else:
                    rgb[y0:y1] = np.asarray(band if mode == "RGB" else band.convert("RGB"))
            return rgb, None
    except Exception as exc:
        raise ImageIOError(f"cannot read {name}: the file is corrupt or truncated "
                           f"({_one_line(exc)})") from None


def _decode_cv2(data: bytes, name: str):
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        with _quiet_opencv():
            arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageIOError(f"cannot read {name}: the file is corrupt ({_one_line(exc)})") from None
    if arr is None:
        raise ImageIOError(f"cannot read {name}: the file is corrupt or uses an encoding "
                           "that cannot be decoded")
    arr = _to_supported_dtype(arr, name)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2)), None
    c = arr.shape[2]
    if c == 2:  # gray + alpha
        return (np.ascontiguousarray(np.repeat(arr[..., :1], 3, axis=2)),
                np.ascontiguousarray(arr[..., 1]))
    if c == 3:  # BGR -> RGB in place (one plane of scratch memory, not a second image)
        for y0, y1 in _bands(arr.shape[0], arr.shape[1]):
            blue = arr[y0:y1, :, 0].copy()
            arr[y0:y1, :, 0] = arr[y0:y1, :, 2]
            arr[y0:y1, :, 2] = blue
        return np.ascontiguousarray(arr), None
    if c >= 4:
        return np.ascontiguousarray(arr[..., 2::-1]), np.ascontiguousarray(arr[..., 3])
    raise ImageIOError(f"cannot read {name}: unsupported channel layout ({c} channels)")


class _quiet_opencv:
    """Silence OpenCV's own log lines while decoding (errors are reported as ImageIOError)."""

    def __enter__(self):
        self._level = None
        log = getattr(getattr(cv2, "utils", None), "logging", None)
        if log is not None:
            try:
                self._level = log.getLogLevel()
                log.setLogLevel(log.LOG_LEVEL_SILENT)
            except Exception:  # pragma: no cover - older OpenCV builds
                self._level = None
        return self

    def __exit__(self, *exc) -> None:
        if self._level is not None:
            cv2.utils.logging.setLogLevel(self._level)


def _to_supported_dtype(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype.kind == "f":  # float TIFF: assume [0, 1] unless it obviously is not
        a = np.nan_to_num(arr.astype(np.float64))
        scale = 65535.0 if a.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 65535).astype(np.uint16)
    if arr.dtype in (np.int8, np.int16):
        return np.clip(arr.astype(np.int32) * (257 if arr.dtype == np.int8 else 2), 0,
                       65535).astype(np.uint16)
    if arr.dtype in (np.uint32, np.int32):
        return np.clip(arr, 0, 65535).astype(np.uint16)
    raise ImageIOError(f"cannot read {name}: {arr.dtype} pixel data is not supported")


def _metadata(pil, fmt: str):
    """(exif bytes with header | None, icc bytes | None) from an open Pillow image."""
    icc = pil.info.get("icc_profile") or None
    if pil.mode == "CMYK":
        icc = None  # a CMYK profile does not describe the RGB pixels we hand out
    exif = None
    try:
        if fmt == "TIFF":  # a TIFF's EXIF is its own IFD: keep all but the layout tags
            from PIL import Image
            from PIL.TiffTags import TAGS_V2_GROUPS

            src = pil.getexif()
            ex = Image.Exif()
            for tag, value in src.items():
                if tag not in _TIFF_STRUCTURAL:
                    ex[tag] = src.get_ifd(tag) if tag in TAGS_V2_GROUPS else value
            exif = ex.tobytes() if len(ex) else None
        else:
            exif = _normalise_exif(pil.info.get("exif"))
    except Exception:
        exif = None  # malformed EXIF must not stop the image from loading
    return exif, (bytes(icc) if icc else None)


# ---------------------------------------------------------------------------- masks

def load_mask(path, shape=None, use_alpha: bool = False, resize: bool = False) -> np.ndarray:
    """Read a mask file: uint8 HxW, 255 = fill, 0 = keep (binary).

    Without ``use_alpha``, a pixel is a hole when its brightest channel is above 127 (white or
    any bright paint on black); transparent pixels count as black. With ``use_alpha``, the
    transparent pixels (alpha <= 127) are the hole (e.g. a PNG with the object erased).
    ``shape``: the image's (h, w[, c]); a different mask size raises :class:`MaskSizeError`
    unless ``resize`` is true (nearest-neighbour scaling)."""
    doc = load_image(path)
    if use_alpha and doc.alpha is None:
        raise ImageIOError(f"cannot use {_name(path)} as a mask: it has no alpha channel "
                           "(transparent = fill needs one)")
    h, w = doc.rgb.shape[:2]
    mask = np.empty((h, w), np.uint8)
    transparent = opaque = mid_tones = 0
    for y0, y1 in _bands(h, w):  # band by band: no full-size temporaries
        alpha8 = to_uint8(doc.alpha[y0:y1]) if doc.alpha is not None else None
        if use_alpha:
            np.less_equal(alpha8, 127, out=mask[y0:y1].view(bool))
        else:
            level = to_uint8(doc.rgb[y0:y1]).max(axis=2)
            if alpha8 is not None:
                solid = alpha8 > 127
                transparent += int(solid.size - np.count_nonzero(solid))
                opaque += int(np.count_nonzero(solid))
                mid_tones += int(np.count_nonzero(solid & (level > 32) & (level < 224)))
                level = ((level.astype(np.uint16) * alpha8 + 127) // 255).astype(np.uint8)
            np.greater(level, 127, out=mask[y0:y1].view(bool))
    mask *= 255  # the bool views wrote 0/1
    del doc
    if transparent and (not mask.any() or mid_tones > 0.05 * max(1, opaque)):
        # transparent pixels plus nothing bright, or a photo rather than a black-and-white
        # mask around them: the transparent part is most likely meant as the hole
        warnings.warn(f"{Path(path).name}: its transparent pixels count as 'keep' and the hole "
                      "is read from its bright pixels; if the transparent part is the hole, "
                      "read the mask from its alpha channel (--mask-alpha)",
                      ImageIOWarning, stacklevel=2)
    if shape is not None:
        h, w = int(shape[0]), int(shape[1])
        if mask.shape != (h, w):
            if not resize:
                raise MaskSizeError(
                    f"mask {_name(path)} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                    f"{w}x{h}", mask_shape=mask.shape, image_shape=(h, w))
            from .maskops import resize_mask
            mask = resize_mask(mask, (h, w))
    return mask


def save_mask(path, mask: np.ndarray, overwrite: bool = False) -> Path:
    """Write ``mask`` (uint8 HxW, or bool) as an 8-bit grayscale image, atomically."""
    from PIL import Image

    m = np.asarray(mask)
    if m.dtype == bool:
        m = m.astype(np.uint8) * 255
    if m.ndim != 2 or m.dtype != np.uint8:
        raise ValueError(f"mask must be a uint8 HxW array, got {m.dtype} {m.shape}")
    fmt = format_for_path(path)
    im = Image.fromarray(np.ascontiguousarray(m))
    kwargs = {"quality": 100} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "WEBP":
        kwargs["lossless"] = True
    return _atomic_write(Path(path), lambda f: im.save(f, format=fmt, **kwargs), overwrite)


# ============================================================================ saving

def save_image(path, rgb: np.ndarray, alpha: Optional[np.ndarray] = None,
               exif: Optional[bytes] = None, icc: Optional[bytes] = None,
               overwrite: bool = False, quality: int = 95) -> Path:
    """Write ``rgb`` (HxWx3 uint8/uint16) in the format of ``path``'s extension, atomically.

    ``alpha``: HxW (uint8/uint16; converted to ``rgb``'s depth). ``exif``: raw EXIF bytes (with
    or without the ``Exif\\0\\0`` header); ``icc``: raw ICC profile. ``quality``: JPEG/WebP
    quality 1..100 (WebP 100 = lossless). Raises ``FileExistsError`` when ``path`` exists and
    ``overwrite`` is false, :class:`ImageIOError` for anything else that goes wrong. Returns
    the path written."""
    path = Path(path)
    fmt = format_for_path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"rgb must be an HxWx3 uint8/uint16 array, got {rgb.dtype} {rgb.shape}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != rgb.shape[:2]:
            raise ValueError(f"alpha is {alpha.shape} but the image is {rgb.shape[:2]}")
        if alpha.dtype == bool:
            alpha = alpha.astype(np.uint8) * 255
        alpha = to_uint16(alpha) if rgb.dtype == np.uint16 else to_uint8(alpha)
    if not overwrite and path.exists():
        raise FileExistsError(errno.EEXIST, f"{_name(path)} already exists", _name(path))
    exif = _normalise_exif(exif)
    icc = bytes(icc) if icc else None

    if rgb.dtype == np.uint16 and fmt not in HIGH_BIT_FORMATS:
        warnings.warn(f"{path.name}: {fmt} holds only 8 bits per channel; the 16-bit image "
                      "is rounded to 8 bits (save as PNG or TIFF to keep 16 bits)",
                      ImageIOWarning, stacklevel=2)
        rgb = to_uint8(rgb)
        alpha = to_uint8(alpha) if alpha is not None else None
    if alpha is not None and fmt == "JPEG":
        warnings.warn(f"{path.name}: JPEG has no alpha channel; transparency is dropped "
                      "(save as PNG, WebP or TIFF to keep it)", ImageIOWarning, stacklevel=2)
        alpha = None
    if fmt == "BMP" and (exif or icc):
        warnings.warn(f"{path.name}: BMP cannot store EXIF or ICC metadata; it is dropped",
                      ImageIOWarning, stacklevel=2)
        exif = icc = None

    if fmt == "TIFF":  # own writer: Pillow cannot write 16-bit RGB, nor EXIF sub-IFDs via libtiff
        write = _writer_tiff(rgb, alpha, exif, icc)
    elif rgb.dtype == np.uint16:
        write = _writer_png16(rgb, alpha, exif, icc)
    elif fmt == "BMP":
        write = _writer_bmp(rgb, alpha)
    else:
        write = _writer_pillow(fmt, rgb, alpha, exif, icc, quality)
    return _atomic_write(path, write, overwrite)


def _writer_pillow(fmt, rgb, alpha, exif, icc, quality) -> Callable:
    from PIL import Image

    if alpha is not None:
        im = Image.fromarray(np.ascontiguousarray(np.dstack([rgb, alpha])))
    else:
        im = Image.fromarray(np.ascontiguousarray(rgb))
    kwargs: dict = {}
    if exif and fmt != "BMP":
        kwargs["exif"] = exif
    if icc and fmt != "BMP":
        kwargs["icc_profile"] = icc
    q = int(max(1, min(100, quality)))
    if fmt == "JPEG":
        kwargs.update(quality=q, subsampling=0 if q >= 90 else 2)
    elif fmt == "WEBP":
        kwargs.update(quality=q, lossless=q >= 100, method=4)
    elif fmt == "PNG":
        kwargs.update(compress_level=6)
    return lambda f: im.save(f, format=fmt, **kwargs)


def _writer_bmp(rgb, alpha) -> Callable:
    """OpenCV writes alpha as a BITFIELDS BMP that readers honour (Pillow's 32-bit BMP is BGRX)."""
    bgr = rgb[..., ::-1]
    arr = np.dstack([bgr, alpha]) if alpha is not None else bgr
    ok, buf = cv2.imencode(".bmp", np.ascontiguousarray(arr))
    if not ok:
        raise ImageIOError("cannot encode the BMP")
    data = buf.tobytes()
    return lambda f: f.write(data)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _writer_png16(rgb, alpha, exif, icc) -> Callable:
    bgr = rgb[..., ::-1]
    arr = np.dstack([bgr, alpha]) if alpha is not None else bgr
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, 4])
    if not ok:
        raise ImageIOError("cannot encode the 16-bit PNG")
    data = buf.tobytes()
    extra = b""
    if icc:  # iCCP must precede IDAT; eXIf is put there too so every reader sees it early
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:])
    if extra:
        ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
        data = data[:ihdr_end] + extra + data[ihdr_end:]
    return lambda f: f.write(data)


def _writer_tiff(rgb, alpha, exif, icc) -> Callable:
    """A baseline 8- or 16-bit RGB(A) TIFF, Adobe-deflate strips, with EXIF tags and ICC."""
    from PIL import Image
    from PIL.TiffImagePlugin import ImageFileDirectory_v2
    from PIL.TiffTags import TAGS_V2_GROUPS

    arr = np.dstack([rgb, alpha]) if alpha is not None else rgb
    h, w, c = arr.shape
    bits = 16 if arr.dtype == np.uint16 else 8
    raw = np.ascontiguousarray(arr.astype("<u2") if bits == 16 else arr)
    row_bytes = w * c * bits // 8
    rows = max(1, min(h, (256 * 1024) // max(1, row_bytes)))
    strips = [zlib.compress(raw[y:y + rows].tobytes(), 6) for y in range(0, h, rows)]

    ifd = ImageFileDirectory_v2(prefix=b"II")
    if exif:
        ex = Image.Exif()
        ex.load(exif)
        for key in ex:
            if key in _TIFF_STRUCTURAL:
                continue
            ifd[key] = ex.get_ifd(key) if key in TAGS_V2_GROUPS else ex.get(key)
            if key in getattr(ex, "tagtype", {}):
                ifd.tagtype[key] = ex.tagtype[key]
    # Layout: header, IFD (at 8), strips. Pillow's IFD writer adds the end of the IFD to the
    # StripOffsets it is given, so they are relative to the first strip.
    offsets, pos = [], 0
    for s in strips:
        offsets.append(pos)
        pos += len(s) + (len(s) & 1)
    ifd[256] = w
    ifd[257] = h
    ifd[258] = (bits,) * c
    ifd[259] = 8  # Adobe deflate
    ifd[262] = 2  # RGB
    ifd[273] = tuple(offsets)
    ifd[277] = c
    ifd[278] = rows
    ifd[279] = tuple(len(s) for s in strips)
    ifd[284] = 1
    ifd[339] = (1,) * c
    if alpha is not None:
        ifd[338] = (2,)  # unassociated alpha
    if icc:
        ifd[34675] = icc
        ifd.tagtype[34675] = 7  # UNDEFINED
    for tag in (273, 279):
        ifd.tagtype[tag] = 4  # LONG
    ifd_bytes = ifd.tobytes(8)

    def write(f) -> None:
        f.write(b"II*\x00" + struct.pack("<I", 8))
        f.write(ifd_bytes)
        if len(ifd_bytes) & 1:
            raise AssertionError("TIFF IFD must end on a word boundary")
        for s in strips:
            f.write(s)
            if len(s) & 1:
                f.write(b"\x00")
    return write


def write_bytes_atomic(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (e.g. to copy an image file byte for byte)."""
    return _atomic_write(Path(path), lambda f: f.write(data), overwrite)


def _atomic_write(path: Path, write: Callable, overwrite: bool) -> Path:
    """Run ``write(fileobj)`` into a temporary file next to ``path`` and move it into place
    (:func:`.fsutil.atomic_write`); failures become one-line :class:`ImageIOError`s."""
    name = _name(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageIOError(f"cannot write {name}: the folder {_name(folder)} does not exist")
    try:
        return atomic_write(path, write, overwrite=overwrite)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"{name} already exists", name) from None
    except ImageIOError:
        raise
    except OSError as exc:
        raise ImageIOError(f"cannot write {name}: {exc.strerror or _one_line(exc)}") from None
    except Exception as exc:  # encoder errors (Pillow raises ValueError/OSError/KeyError…)
        raise ImageIOError(f"cannot write {name}: {_one_line(exc)}") from None


__all__ = ["ImageDoc", "ImageIOError", "ImageIOWarning", "MaskSizeError", "load_image",
           "decode_image", "save_image", "load_mask", "save_mask", "format_for_path",
           "write_bytes_atomic",
           "to_uint8", "to_uint16", "apply_orientation", "exif_orientation",
           "exif_with_orientation", "EXTENSIONS", "SUPPORTED_EXTENSIONS", "FORMATS"]
