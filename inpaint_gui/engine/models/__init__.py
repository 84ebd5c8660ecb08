"""Model adapters: each module defines ``SPEC`` (a ModelSpec) and a loader that returns an
:class:`inpaint_gui.engine.models.base.InpaintModel`. Modules must not import torch at top level."""
