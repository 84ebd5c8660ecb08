"""Model adapters: each module defines a :class:`~.base.ModelAdapter` registered with
``@registry.register_model``. Importing this package imports every adapter (in the order the
models are listed); modules must not import torch at top level.
"""
from . import classical, patchmatch, rfr, aot, srn, lama, pennet  # noqa: F401 - they register
