"""PySide6 desktop application (the only package that imports Qt).

Views, tools, undo commands and dialogs; the logic they show and edit is Qt-free in
:mod:`inpaint_gui.core`. Modules: ``document`` (signals and undo commands over the
image/mask/margins), ``canvas`` (the QGraphicsView editor), ``tools`` (brush, eraser,
rectangle, lasso, extend canvas), ``docks`` (tool options, mask, canvas/outpaint, layers
panels), ``result_layer`` (the result shown above the image), ``main_window``; ``qimage``
(numpy <-> QImage), ``fileio`` (bridge to the engine's image I/O).
"""

from . import _pyside_fixes as _fixes

_fixes.apply()
