"""PySide6 desktop application (the only package that imports Qt).

Modules: ``document`` (the edited image/mask/margins + undo), ``canvas`` (the
QGraphicsView editor), ``tools`` (brush, eraser, rectangle, lasso, extend canvas),
``docks`` (tool options, mask, canvas/outpaint, layers panels), ``main_window``.
Qt-free helpers: ``brush`` (dab rasterisation), ``margins`` (outpaint presets),
``project`` (the ``.inpaint`` project file), ``fileio`` (bridge to the engine's image I/O).
"""

from . import _pyside_fixes as _fixes

_fixes.apply()
