"""A memory-bounded LRU cache of loaded models, shared by every run of a session.

``get(spec, weights, device, precision, options)`` loads a model once; the cache is bounded by
the estimated bytes of the loaded networks (``max_bytes``) and a count: when a newly loaded
model does not fit, least recently used models are unloaded (``model.close()``) until it does
(the newest model is always kept, even if it alone exceeds the bound). :func:`shared_cache`
is the session's cache; the run service (:mod:`.service`) keeps inpainting and outpainting
models in it and drops a device's models when that device runs out of memory.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional

DEFAULT_MAX_BYTES = 3 << 30  # 3 GiB of weights (activations come on top)
DEFAULT_MAX_ITEMS = 4


def model_nbytes(model) -> int:
    """Estimated memory of a loaded model: parameter + buffer bytes of its ``net`` (0 if none)."""
    net = getattr(model, "net", None)
    if net is None:
        return int(getattr(model, "nbytes", 0) or 0)
    total = 0
    try:
        for t in list(net.parameters()) + list(net.buffers()):
            total += t.numel() * t.element_size()
    except Exception:  # not an nn.Module
        return int(getattr(model, "nbytes", 0) or 0)
    return total


def _weights_key(weights):
    if weights is None:
        return ("default",)
    if isinstance(weights, (str, Path)):
        p = Path(weights)
        try:
            st = p.stat()
            return ("path", str(p.resolve()), st.st_mtime_ns, st.st_size)
        except OSError:
            return ("path", str(p), None, None)
    return ("object", id(weights))


class ModelCache:
    """LRU of loaded models keyed by (model, weights identity, device, precision, options).

    Thread-safe: the GUI thread may call :meth:`clear` while a worker thread loads."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_items: int = DEFAULT_MAX_ITEMS,
                 loader: Optional[Callable] = None, sizer: Callable = model_nbytes) -> None:
        self.max_bytes = int(max_bytes)
        self.max_items = int(max_items)
        self._loader = loader  # (spec, weights, device, precision, **options) -> model
        self._sizer = sizer
        self._items: "OrderedDict[tuple, tuple]" = OrderedDict()  # key -> (model, weights, nbytes)
        self._lock = threading.RLock()
        self.loads = 0  # number of actual loads (cache misses), for tests and the status bar

    @staticmethod
    def key(spec, weights, device: str, precision: str, options: Optional[dict] = None) -> tuple:
        return (spec.name, _weights_key(weights), device, precision,
                tuple(sorted((k, repr(v)) for k, v in (options or {}).items())))

    def _load(self, spec, weights, device, precision, options, notice=None):
        loader = self._loader
        if loader is None:
            from .registry import get_adapter
            loader = get_adapter(spec).load

        def load(path=weights):
            return loader(spec, weights=path, device=device, precision=precision, **options)
        if weights is None and not options and spec.needs_weights:
            # the installed files in order: skip broken ones, say which (not with network
            # options: a failure could then be the options' fault, not the file's)
            from . import weights as W
            return W.load_with_fallback(spec, load, notice)
        return load()

    def get(self, spec, weights, device: str, precision: str, options: Optional[dict] = None,
            notice: Optional[Callable[[str], None]] = None):
        """The loaded model (from the cache or loaded now). With ``weights=None`` a broken
        weight file is skipped for the next usable one; ``notice(text)`` hears about it."""
        options = dict(options or {})
        key = self.key(spec, weights, device, precision, options)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and (key[1][0] != "object" or hit[1] is weights):
                self._items.move_to_end(key)
                return hit[0]
        model = self._load(spec, weights, device, precision, options, notice)
        self.loads += 1
        nbytes = int(self._sizer(model))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None and old[0] is not model:
                _close(old[0])
            self._items[key] = (model, weights, nbytes)
            self._evict()
        return model

    def _evict(self) -> None:
        while len(self._items) > 1 and (len(self._items) > self.max_items
                                        or self.total_bytes() > self.max_bytes):
            _key, (old, _w, _n) = self._items.popitem(last=False)
            _close(old)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(n for _m, _w, n in self._items.values())

    def names(self) -> "list[tuple]":
        """Keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def unload(self, predicate: Callable[[tuple], bool]) -> int:
        """Close and drop every model whose key satisfies ``predicate``; returns how many."""
        with self._lock:
            keys = [k for k in self._items if predicate(k)]
            for k in keys:
                _close(self._items.pop(k)[0])
        return len(keys)

    def unload_device(self, device: str) -> int:
        """Drop every model living on ``device`` (e.g. after a CUDA out-of-memory error)."""
        base = device.split(":")[0]
        return self.unload(lambda k: str(k[2]).split(":")[0] == base)

    def set_limits(self, max_bytes: Optional[int] = None, max_items: Optional[int] = None) -> None:
        with self._lock:
            if max_bytes is not None:
                self.max_bytes = int(max_bytes)
            if max_items is not None:
                self.max_items = int(max_items)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for model, _w, _n in items:
            _close(model)


def _close(model) -> None:
    try:
        model.close()
    except Exception:  # pragma: no cover - best effort
        pass


_SHARED: Optional[ModelCache] = None
_SHARED_LOCK = threading.Lock()


def shared_cache() -> ModelCache:
    """The session-wide cache (created on first use)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ModelCache()
        return _SHARED
