"""PyTorch networks with the official state_dict layouts.

``create(name, **kwargs)`` returns an ``nn.Module`` for ``name`` in
``rfr``, ``aot``, ``srn``, ``lama``, ``pennet``; each sub-module defines its own
``create(**kwargs)`` (keyword arguments select smaller variants; the defaults are
the official configuration). ``kernels/``: the fast CPU kernels of their inference paths and
the one switch over them (``fast_path`` per network, ``INPAINT_FAST_KERNELS=0`` for all).
"""
from __future__ import annotations

import importlib

NET_MODULES = {
    "rfr": "rfr",
    "aot": "aot",
    "srn": "srn",
    "lama": "lama",
    "pennet": "pennet",
}


def create(name: str, **kwargs):
    """Build the network ``name`` (official configuration unless kwargs say otherwise)."""
    key = name.lower()
    if key not in NET_MODULES:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(sorted(NET_MODULES))}")
    module = importlib.import_module(f"{__name__}.{NET_MODULES[key]}")
    return module.create(**kwargs)
