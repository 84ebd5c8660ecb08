"""Shared test setup: headless Qt, small thread counts, isolated user model folder."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_user_models(tmp_path_factory, monkeypatch):
    """Never read or write the real ~/.local/share/inpaint-gui/models during tests."""
    d = tmp_path_factory.mktemp("user_models")
    monkeypatch.setenv("INPAINT_GUI_MODELS", str(d))
    yield d


@pytest.fixture
def one_thread():
    """torch on one thread: tiny networks lose more to thread hand-offs than they gain."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


_MISSING = object()


@pytest.fixture
def no_patchmatch():
    """Simulate an installation where ``import patchmatch`` fails (PatchMatch unavailable)."""
    import sys

    from inpaint_gui.engine.model_cache import shared_cache
    from inpaint_gui.engine.models import patchmatch as PM
    saved = sys.modules.get("patchmatch", _MISSING)
    sys.modules["patchmatch"] = None  # the import system raises ImportError for None
    shared_cache().clear()
    PM.refresh_availability()
    try:
        yield
    finally:
        if saved is _MISSING:
            sys.modules.pop("patchmatch", None)
        else:
            sys.modules["patchmatch"] = saved
        shared_cache().clear()
        PM.refresh_availability()
