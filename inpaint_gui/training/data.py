"""Training / validation data: any folder of photos, random crops, held-out split by file.

* :func:`list_images` finds images recursively (jpg, jpeg, png, bmp, webp, tif, tiff).
* :func:`split_files`: if the folder has ``train/`` and ``val/`` sub-folders they are used;
  otherwise each file goes to validation when a hash of its relative path falls below
  ``val_fraction`` (stable when files are added or removed; at least ``min_val`` files).
* :func:`load_rgb` decodes with EXIF orientation applied, any mode -> RGB uint8, large JPEGs
  decoded at reduced scale (``draft``) when only a smaller copy is needed.
* :class:`BatchSource` makes batch number ``step`` from ``(seed, step)`` alone: files, crop
  sizes/positions, flips, jitter and masks come from ``numpy.random.default_rng([seed, step])``.
  So a resumed run sees exactly the batches an uninterrupted run would, whatever the number
  of loader threads.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(root: "str | Path") -> List[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder not found: {root} (build the training photo pool with 'make data' "
            f"or 'inpaint data collect {root}')")
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(files)


def _hash01(text: str) -> float:
    h = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def split_files(root: "str | Path", val_fraction: float = 0.05, min_val: int = 4,
                max_val: Optional[int] = None) -> Tuple[List[Path], List[Path]]:
    """(train files, validation files); disjoint, deterministic."""
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        return list_images(root / "train"), list_images(root / "val")
    files = list_images(root)
    if len(files) < 2:
        raise ValueError(f"need at least 2 images in {root} (found {len(files)})")
    keyed = sorted(files, key=lambda p: _hash01(p.relative_to(root).as_posix() if p != root else p.name))
    scores = [_hash01(p.relative_to(root).as_posix()) for p in keyed]
    n_val = sum(1 for s in scores if s < val_fraction)
    n_val = max(n_val, min(min_val, len(files) // 2))
    if max_val is not None:
        n_val = min(n_val, max_val)
    val = sorted(keyed[:n_val])
    train = sorted(keyed[n_val:])
    return train, val


def eval_files(root: "str | Path") -> List[Path]:
    """Files for evaluation: ``val/`` if the folder has one, else every image in it."""
    root = Path(root)
    if (root / "val").is_dir():
        return list_images(root / "val")
    return list_images(root)


# ----------------------------------------------------------------------------------------------
# decoding


def load_rgb(path: "str | Path", max_short: Optional[int] = None) -> np.ndarray:
    """RGB uint8 HxWx3 with EXIF orientation applied; optionally downscaled (area) so that the
    short side is at most ``max_short``."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if max_short and im.format == "JPEG":
            w, h = im.size
            s = min(w, h)
            if s > 2 * max_short:  # decode at 1/2, 1/4 or 1/8 scale, still >= max_short
                im.draft("RGB", (math.ceil(w * max_short / s), math.ceil(h * max_short / s)))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            arr = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            arr = np.repeat(arr[..., None], 3, axis=2)
        else:
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            arr = np.asarray(im.convert("RGB"))
    if max_short:
        h, w = arr.shape[:2]
        s = min(h, w)
        if s > max_short:
            f = max_short / s
            arr = cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr)


class ImageCache:
    """Thread-safe LRU of decoded images, bounded in bytes."""

    def __init__(self, max_bytes: int = 1 << 30, max_short: Optional[int] = None):
        self.max_bytes = int(max_bytes)
        self.max_short = max_short
        self._items: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: Path) -> np.ndarray:
        key = str(path)
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
                return arr
        arr = load_rgb(path, self.max_short)
        with self._lock:
            if key not in self._items:
                self._items[key] = arr
                self._bytes += arr.nbytes
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.nbytes
        return arr


# ----------------------------------------------------------------------------------------------
# crops


def center_square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop resized to size x size (area when shrinking, cubic when enlarging)."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0:y0 + s, x0:x0 + s]
    if s == size:
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator,
                scale: Tuple[float, float] = (0.0, 1.0), flip: bool = True) -> np.ndarray:
    """A random square crop whose side is between ``size`` and the short side (RFR's scheme:
    ``side ~ U[size, short]``, mapped through ``scale`` as fractions of that interval), resized to
    ``size``; random horizontal flip."""
    h, w = img.shape[:2]
    short = min(h, w)
    lo = min(size, short)
    a, b = scale
    side = int(round(lo + (short - lo) * rng.uniform(a, b)))
    side = max(1, min(side, short))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = img[y0:y0 + side, x0:x0 + side]
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def color_jitter(img: np.ndarray, rng: np.random.Generator, amount: float = 0.05) -> np.ndarray:
    """Brightness / contrast / saturation jitter of +-amount (AOT-GAN uses 0.05)."""
    x = img.astype(np.float32) / 255.0
    b = 1 + rng.uniform(-amount, amount)
    c = 1 + rng.uniform(-amount, amount)
    s = 1 + rng.uniform(-amount, amount)
    x = x * b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - gray[..., None]) * s + gray[..., None]
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# batches


class BatchSource:
    """Deterministic training batches.

    ``mask_fn(h, w, rng) -> uint8 HxW (1 = hole)`` draws one mask per sample, or with
    ``shared_mask=True`` one per batch (SRN's training uses one window per step).
    ``batch(step)`` returns ``(images uint8 (N,S,S,3), holes uint8 (N,S,S))``.
    """

    def __init__(self, files: Sequence[Path], size: int, batch: int, seed: int, mask_fn: Callable,
                 cache_mb: int = 1024, max_short_factor: float = 3.0, jitter: float = 0.0,
                 scale: Tuple[float, float] = (0.0, 1.0), shared_mask: bool = False, workers: int = 2):
        if not files:
            raise ValueError("no training images")
        self.files = list(files)
        self.size = int(size)
        self.batch_size = int(batch)
        self.seed = int(seed)
        self.mask_fn = mask_fn
        self.jitter = jitter
        self.scale = scale
        self.shared_mask = shared_mask
        self.cache = ImageCache(int(cache_mb) << 20, max_short=int(max_short_factor * size))
        self.workers = max(0, int(workers))
        # one thread prefetches the next batch; extra workers decode the samples of a batch
        self._prefetch = ThreadPoolExecutor(1) if self.workers > 0 else None
        self._pool = ThreadPoolExecutor(self.workers - 1) if self.workers > 1 else None
        self._pending = {}

    def _sample(self, step: int, i: int, file_idx: int):
        rng = np.random.default_rng([self.seed, step, i, 1])
        img = self.cache.get(self.files[file_idx])
        crop = random_crop(img, self.size, rng, scale=self.scale)
        if self.jitter:
            crop = color_jitter(crop, rng, self.jitter)
        return crop

    def make(self, step: int):
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self.files), size=self.batch_size)
        if self._pool is not None and self.batch_size > 1:
            imgs = list(self._pool.map(lambda a: self._sample(step, a[0], int(a[1])), enumerate(idx)))
        else:
            imgs = [self._sample(step, i, int(f)) for i, f in enumerate(idx)]
        s = self.size
        if self.shared_mask:
            m = self.mask_fn(s, s, np.random.default_rng([self.seed, step, 0, 2]))
            masks = [m] * self.batch_size
        else:
            masks = [self.mask_fn(s, s, np.random.default_rng([self.seed, step, i, 2]))
                     for i in range(self.batch_size)]
        return np.stack(imgs), np.stack(masks).astype(np.uint8)

    def batch(self, step: int):
        """Batch ``step``; prefetches ``step + 1`` in the background when workers > 0."""
        fut = self._pending.pop(step, None)
        out = fut.result() if fut is not None else self.make(step)
        if self._prefetch is not None:
            for k in list(self._pending):
                if k != step + 1:
                    self._pending.pop(k).cancel()
            if step + 1 not in self._pending:
                self._pending[step + 1] = self._prefetch.submit(self.make, step + 1)
        return out

    def close(self):
        for f in self._pending.values():
            f.cancel()
        self._pending.clear()
        for ex in (self._prefetch, self._pool):
            if ex is not None:
                ex.shutdown(wait=True, cancel_futures=True)
        self._prefetch = self._pool = None


def validation_set(files: Sequence[Path], size: int, count: int) -> Tuple[List[str], np.ndarray]:
    """The first ``count`` validation files (sorted), centre-cropped to size x size."""
    files = sorted(files)[:count]
    imgs = [center_square(load_rgb(p, max_short=size * 2), size) for p in files]
    return [str(p) for p in files], np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
