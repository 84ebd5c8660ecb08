"""The engine, training and core (document logic) packages never import Qt."""
import subprocess
import sys
import textwrap


def test_engine_imports_without_qt():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'qimage2ndarray', 'PyQt5', 'PyQt6', 'shiboken6'):
                    raise ImportError('Qt is blocked in this test: ' + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import inpaint_gui.engine as engine
        import inpaint_gui.engine.pipeline, inpaint_gui.engine.weights
        import pkgutil, importlib
        for pkg in ('inpaint_gui.engine', 'inpaint_gui.training', 'inpaint_gui.core'):
            mod = importlib.import_module(pkg)
            for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):
                importlib.import_module(info.name)
        models = [m.name for m in engine.list_models()]
        img = np.zeros((16, 16, 3), np.uint8); mask = np.zeros((16, 16), np.uint8); mask[4:8, 4:8] = 255
        engine.inpaint(img, mask, model='telea')
        assert not any(m.split('.')[0] in ('PySide6', 'qimage2ndarray') for m in sys.modules)
        print('OK', models)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout
