"""Qt-free application logic used by the desktop app (no Qt import anywhere in here).

Modules: ``brush`` (dabs, stroke interpolation, rectangles, lassos), ``mask_edit`` (mask
undo patches, in-place gestures, mask operations), ``margins`` (outpaint margins, presets,
the extended canvas), ``result`` (result layers and what accepting one changes),
``project`` (the ``.inpaint`` project file), ``recovery`` (crash-recovery autosave files:
writing, finding leftovers, deleting). Boxes are the engine's ``(y0, x0, y1, x1)``.
"""
