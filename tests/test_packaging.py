"""A built wheel ships the model cards and starter weights (issue 22, item 10): an installed
app (not the source checkout) finds them as package data."""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_model_cards_and_starter_weights(tmp_path):
    from inpaint_gui.engine import registry
    src = tmp_path / "src"  # a clean copy: no build/ folder left from an earlier build
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for name in ("inpaint_gui", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("inpaint_gui-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    cards = {ws.card.split("/", 1)[1] for spec in registry.list_models()
             for ws in spec.weight_sets if ws.card}
    assert cards and {f"inpaint_gui/bundled_models/{c}" for c in cards} <= names
    assert "inpaint_gui/bundled_models/aot_starter.pt" in names
    assert any(n.startswith("inpaint_gui/bundled_models/cards/") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        site = Path({str(site)!r})
        import inpaint_gui
        assert Path(inpaint_gui.__file__).is_relative_to(site), inpaint_gui.__file__
        from inpaint_gui.engine import registry, weight_store as S, weights as W
        assert W.BUNDLED_DIR == site / "inpaint_gui" / "bundled_models", W.BUNDLED_DIR
        for o in S.official_weights():
            assert o.card is not None and o.card.is_relative_to(site), (o.model, o.card)
        assert "G0000000.pt" in S.card_text("models/aot_official.md")
        status, ws, path = W.weight_status(registry.get_spec("aot"))
        assert status == "starter" and path.is_relative_to(site), (status, path)
        print("OK")
    """)
    env = dict(os.environ, PYTHONPATH=str(site), INPAINT_GUI_MODELS=str(tmp_path / "empty"))
    res = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]
