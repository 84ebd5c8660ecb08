"""inpaint_gui: offline desktop inpainting/outpainting.

Sub-packages: ``engine`` (Qt-free models and pipeline), ``training`` (Qt-free
trainer and evaluation), ``ui`` (PySide6 application).
"""
__version__ = "0.1.0"
