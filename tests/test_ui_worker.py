"""FillWorker / FillRunner: progress, results, cancel, responsiveness, OOM retries, cache.

Every run goes the real way (run service, model cache, pipeline); slow and out-of-memory
models are registered test models (:mod:`fakemodels`)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402

import fakemodels as F  # noqa: E402
from inpaint_gui.engine import devices, model_cache, registry  # noqa: E402
from inpaint_gui.engine.models.base import ModelAdapter  # noqa: E402
from inpaint_gui.engine.pipeline import HDStrategy  # noqa: E402
from inpaint_gui.engine.registry import ModelSpec, WeightSet  # noqa: E402
from inpaint_gui.engine.settings import RunSettings  # noqa: E402
from inpaint_gui.ui.worker import FillRunner  # noqa: E402


def _inputs(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[20:40, 30:50] = 255
    return image, mask


class Recorder:
    def __init__(self, runner):
        self.events = []
        for name in ("progress", "notice", "finished", "result_ready", "compare_finished",
                     "failed", "cancelled"):
            getattr(runner, name).connect(lambda *a, _n=name: self.events.append((_n, a)))

    def names(self):
        return [n for n, _ in self.events]

    def get(self, name):
        return [a for n, a in self.events if n == name]


@pytest.fixture
def make_runner(qtbot):
    runners = []

    def make(**kw):
        r = FillRunner(**kw)
        runners.append(r)
        return r, Recorder(r)

    yield make
    for r in runners:
        assert r.shutdown(10000)


def test_telea_fill_emits_progress_and_result(qtbot, make_runner):
    runner, rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, mask, RunSettings(model="telea", strategy=HDStrategy("original")))
    res = blocker.args[0]
    assert res.model == "telea" and res.weights == "default" and res.seconds >= 0
    assert res.array.shape == image.shape and res.array.dtype == image.dtype
    keep = mask == 0
    assert np.array_equal(res.array[keep], image[keep])
    assert not np.array_equal(res.array[~keep], image[~keep])
    assert rec.get("progress"), "no progress was reported"
    stage, frac, elapsed = rec.get("progress")[-1]
    assert isinstance(stage, str) and 0.0 <= frac <= 1.0 and elapsed >= 0
    assert "failed" not in rec.names() and "cancelled" not in rec.names()
    assert not runner.is_running()


@pytest.fixture
def slow(monkeypatch):
    return F.register(monkeypatch, F.Slow)


def test_cancel_mid_run_emits_cancelled_and_no_result(qtbot, make_runner, slow):
    runner, rec = make_runner()
    image, mask = F.slow_inputs(200)
    runner.run(image, mask, F.slow_settings())
    qtbot.waitUntil(lambda: len(rec.get("progress")) >= 3, timeout=10000)
    with qtbot.waitSignal(runner.cancelled, timeout=10000):
        runner.cancel()
    assert runner.wait(5000)
    qtbot.wait(50)
    assert "finished" not in rec.names() and "failed" not in rec.names()
    assert rec.names().count("cancelled") == 1
    assert not runner.is_running()


def test_new_job_supersedes_running_one(qtbot, make_runner, slow):
    runner, rec = make_runner()
    image, mask = F.slow_inputs(100)
    runner.run(image, mask, F.slow_settings())
    qtbot.waitUntil(lambda: len(rec.get("progress")) >= 1, timeout=10000)
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, mask, F.slow_settings(delay=0.0))
    assert len(rec.get("finished")) == 1 and "cancelled" not in rec.names()
    assert blocker.args[0].settings.options_dict() == {"delay": 0.0}  # the newer job's


def test_event_loop_keeps_ticking_during_a_fill(qtbot, make_runner, slow):
    runner, rec = make_runner()
    image, mask = F.slow_inputs(10)  # ten windows of real (repeated) Telea fills, 1.2 s
    gaps = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)

    def tick():
        if clock.isValid():
            gaps.append(clock.restart())
        else:
            clock.start()

    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(runner.finished, timeout=30000):
        runner.run(image, mask, F.slow_settings(delay=0.0, busy=0.12))
    took = time.perf_counter() - t0
    timer.stop()
    assert took >= 1.0
    assert len(gaps) > 20
    assert max(gaps) < 100, f"GUI thread blocked for {max(gaps)} ms"


def test_oom_in_the_forward_is_retried_with_tiles_and_noted(qtbot, make_runner, monkeypatch,
                                                          tmp_path):
    """The network runs out of memory on the whole 256 px image; the run service retries with
    128 px tiles, and the worker shows and keeps the note."""
    nets = []
    F.register(monkeypatch, F.oom_adapter(max_pixels=150 * 150, log=nets))
    weights = F.save_oom_weights(tmp_path / "oom.pt")
    runner, rec = make_runner()
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    mask[40:220, 30:230] = 255
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, mask, RunSettings(model="oomnet", weights=weights, device="cpu"))
    res = blocker.args[0]
    assert res.notes == ("oomnet: out of memory on cpu (crop); retrying with 128 px tiles",)
    assert [a[0] for a in rec.get("notice")] == list(res.notes)
    assert any(a[0] == "out of memory: retrying with 128 px tiles" for a in rec.get("progress"))
    # the failed forward saw the whole image; the cache dropped that model and the retry ran
    # on a fresh one in tiles
    assert nets[0].inputs == [("cpu", 256, 256)]
    assert len(nets) == 2 and {inp[1:] for inp in nets[1].inputs} == {(128, 128)}
    keep = mask == 0
    assert np.array_equal(res.array[keep], image[keep])


def test_oom_falls_back_to_cpu_then_reports_failure(qtbot, make_runner, monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "available_devices", lambda: ["cuda", "cpu"])
    model_cache.shared_cache().clear()
    nets = []
    F.register(monkeypatch, F.oom_adapter(log=nets))  # out of memory whenever on the GPU
    weights = F.save_oom_weights(tmp_path / "oom.pt")
    runner, rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, mask, RunSettings(model="oomnet", weights=weights, device="cuda"))
    res = blocker.args[0]
    assert [n.split("; ")[1] for n in res.notes] == [
        "retrying with 128 px tiles", "retrying downscaled to 512 px", "retrying on the CPU"]
    assert [inp[0][0] for inp in (n.inputs for n in nets)] == ["cuda", "cuda", "cuda", "cpu"]
    # each out-of-memory attempt dropped the GPU's models: only the CPU one is kept
    assert [k[2] for k in model_cache.shared_cache().names() if k[0] == "oomnet"] == ["cpu"]
    assert "finished" in rec.names() and "failed" not in rec.names()

    model_cache.shared_cache().clear()
    F.register(monkeypatch, F.oom_adapter(max_pixels=0))  # out of memory everywhere
    runner2, rec2 = make_runner()
    with qtbot.waitSignal(runner2.failed, timeout=20000) as blocker:
        runner2.run(image, mask, RunSettings(model="oomnet", weights=weights, device="cuda"))
    msg, kind = blocker.args
    assert kind == "out_of_memory" and "out of memory even after" in msg and "the CPU" in msg
    assert "finished" not in rec2.names() and len(rec2.get("notice")) == 3


def test_missing_weights_fails_with_kind(qtbot, make_runner, monkeypatch, tmp_path):
    monkeypatch.setenv("INPAINT_GUI_MODELS", str(tmp_path))
    spec = ModelSpec(name="fakenet", title="Fake Net", task="inpaint", native_size=256,
                     weight_sets=(WeightSet("official", "official", "fakenet_absent.pth"),))
    monkeypatch.setitem(registry._MODELS, "fakenet", (spec, ModelAdapter))
    runner, rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.failed, timeout=10000) as blocker:
        runner.run(image, mask, RunSettings(model="fakenet"))
    msg, kind = blocker.args
    assert kind == "missing_weights" and "fakenet_absent.pth" in msg
    assert "finished" not in rec.names()


def test_generic_error_never_crashes(qtbot, make_runner, monkeypatch):
    class Boom(ModelAdapter):
        specs = (ModelSpec(name="boom", title="Boom", task="inpaint", native_size=64,
                           needs_weights=False),)

        @classmethod
        def load(cls, *a, **kw):
            raise ZeroDivisionError("boom")

    F.register(monkeypatch, Boom)
    runner, rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.failed, timeout=10000) as blocker:
        runner.run(image, mask, RunSettings(model="boom"))
    assert blocker.args[1] == "error" and "boom" in blocker.args[0]


def test_compare_runs_every_model(qtbot, make_runner):
    runner, rec = make_runner(auto_available={"telea", "ns"})
    image, mask = _inputs()
    runs = [RunSettings(model="telea", strategy=HDStrategy("original")),
            RunSettings(model="ns", strategy=HDStrategy("original")),
            RunSettings(model="nosuchmodel")]
    with qtbot.waitSignal(runner.compare_finished, timeout=20000) as blocker:
        runner.compare(image, mask, runs)
    results = blocker.args[0]
    assert [r.model for r in results] == ["telea", "ns", "nosuchmodel"]
    assert results[0].ok and results[1].ok and not results[2].ok
    assert results[2].error_kind == "unknown_model"
    assert len(rec.get("result_ready")) == 3
    keep = mask == 0
    for r in results[:2]:
        assert np.array_equal(r.array[keep], image[keep])
    fracs = [a[1] for a in rec.get("progress")]
    assert fracs == sorted(fracs) or max(fracs) <= 1.0


def test_auto_model_is_resolved_and_explained(qtbot, make_runner):
    runner, rec = make_runner(auto_available=set())
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, mask, RunSettings(model="auto", strategy=HDStrategy("original")))
    res = blocker.args[0]
    assert res.model in ("telea", "ns") and res.reason
    assert any(a[0].startswith("Auto:") for a in rec.get("notice"))


class _FakeModel:
    def __init__(self, nbytes):
        self.nbytes = nbytes
        self.closed = False

    def close(self):
        self.closed = True


def test_model_cache_is_lru_with_memory_bound():
    def loader(spec, weights=None, device="cpu", precision="fp32", **opt):
        return _FakeModel(int(spec.native_size) << 20)

    cache = model_cache.ModelCache(max_bytes=1000 << 20, max_items=8, loader=loader)
    specs = {n: ModelSpec(name=n, title=n, task="inpaint", native_size=s, needs_weights=False)
             for n, s in (("a", 400), ("b", 400), ("c", 400), ("big", 2000))}
    a = cache.get(specs["a"], None, "cpu", "fp32")
    b = cache.get(specs["b"], None, "cpu", "fp32")
    assert cache.get(specs["a"], None, "cpu", "fp32") is a and cache.loads == 2
    c = cache.get(specs["c"], None, "cpu", "fp32")  # 1200 MiB > 1000: evict LRU (b)
    assert b.closed and not a.closed and not c.closed
    assert [k[0] for k in cache.names()] == ["a", "c"]
    big = cache.get(specs["big"], None, "cuda", "fp32")  # alone over the bound: kept alone
    assert a.closed and c.closed and not big.closed and len(cache) == 1
    assert cache.unload_device("cuda") == 1 and big.closed and len(cache) == 0


def test_worker_runs_on_the_shared_cache(qtbot, make_runner):
    model_cache.shared_cache().clear()
    runner, _rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=20000):
        runner.run(image, mask, RunSettings(model="telea", strategy=HDStrategy("original")))
    assert runner.service.cache is model_cache.shared_cache()
    assert any(k[0] == "telea" for k in model_cache.shared_cache().names())


def test_outpaint_job_with_classical_fill(qtbot, make_runner):
    runner, rec = make_runner(auto_available=set())
    image, _mask = _inputs(40, 50)
    with qtbot.waitSignal(runner.finished, timeout=20000) as blocker:
        runner.run(image, None, RunSettings(model="auto", blend="feather"), margins=(0, 8, 4, 0))
    res = blocker.args[0]
    assert res.model == "telea" and res.margins == (0, 8, 4, 0) and "outpaint" in res.reason
    assert res.array.shape == (44, 58, 3)
    assert np.array_equal(res.array[0:40, 8:58], image)


def test_dock_and_runner_wiring(qtbot, make_runner, slow):
    from inpaint_gui.ui.models_dock import ModelsDock, bind_runner
    runner, rec = make_runner()
    dock = ModelsDock()
    qtbot.addWidget(dock)
    bind_runner(dock, runner)
    image, mask = F.slow_inputs(300)
    dock.run_requested.connect(lambda s: runner.run(image, mask, F.slow_settings()))
    dock.select_model("telea")
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.progress_bar.value() > 0, timeout=10000)
    assert dock.cancel_button.isEnabled() and dock.is_running()
    with qtbot.waitSignal(runner.cancelled, timeout=10000):
        dock.cancel_button.click()
    assert not dock.is_running() and dock.status_label.text() == "cancelled"
