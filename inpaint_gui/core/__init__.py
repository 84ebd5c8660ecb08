"""Qt-free application logic used by the desktop app (no Qt import anywhere in here).

Modules: ``recovery`` (crash-recovery autosave files: writing, finding leftovers, deleting).
"""
