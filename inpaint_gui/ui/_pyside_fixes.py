"""Work-arounds for bugs of the installed PySide6 (applied on import of ``inpaint_gui.ui``).

PySide6 6.12.0 on Python < 3.12: ``SignalInstance.emit()`` returns ``True`` without taking a
reference, so every Python-side ``signal.emit(...)`` drops one reference to the ``True``
singleton; after a few thousand emits the interpreter aborts with "Fatal Python error:
bool_dealloc: deallocating True or False". We detect the bug with a probe emit and wrap
``emit`` to give the missing reference back (a no-op where the bug is absent; Python 3.12+
has immortal booleans and is not affected).
"""
from __future__ import annotations

import ctypes
import sys

_applied = False


def _emit_drops_a_reference() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal(int)

    p = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        p.sig.emit(0)
    return sys.getrefcount(True) < before - 4


def apply() -> bool:
    """Install the work-around if this PySide6 needs it; returns True when installed."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import SignalInstance
    if not _emit_drops_a_reference():
        return False
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    original = SignalInstance.emit

    def emit(self, *args):
        result = original(self, *args)
        incref(result)  # the reference PySide forgot to give us
        return result

    emit.__doc__ = original.__doc__
    SignalInstance.emit = emit
    # the probe itself dropped references: give them back
    for _ in range(8):
        incref(True)
    _applied = True
    return True
