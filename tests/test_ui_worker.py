"""FillWorker / FillRunner: progress, results, cancel, responsiveness, OOM retries, cache."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402

from inpaint_gui.engine import model_cache, registry  # noqa: E402
from inpaint_gui.engine.pipeline import HDStrategy, inpaint  # noqa: E402
from inpaint_gui.engine.progress import ProgressEvent  # noqa: E402
from inpaint_gui.engine.models.base import ModelAdapter  # noqa: E402
from inpaint_gui.engine.registry import ModelSpec, WeightSet  # noqa: E402
from inpaint_gui.engine.settings import RunSettings  # noqa: E402
from inpaint_gui.ui.worker import FillRunner, oom_fallbacks  # noqa: E402


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


def _slow_engine(steps=200, dt=0.01):
    def engine(image, mask, model="fake", progress=None, cancel=None, **kw):
        t0 = time.perf_counter()
        for i in range(steps):
            time.sleep(dt)
            if cancel is not None:
                cancel.check()
            if progress is not None:
                progress(ProgressEvent(f"tile {i + 1}/{steps}", i + 1, steps, time.perf_counter() - t0))
        return image.copy()
    return engine


def test_cancel_mid_run_emits_cancelled_and_no_result(qtbot, make_runner):
    runner, rec = make_runner(engine=_slow_engine())
    image, mask = _inputs()
    runner.run(image, mask, RunSettings(model="fake"))
    qtbot.waitUntil(lambda: len(rec.get("progress")) >= 3, timeout=10000)
    with qtbot.waitSignal(runner.cancelled, timeout=10000):
        runner.cancel()
    assert runner.wait(5000)
    qtbot.wait(50)
    assert "finished" not in rec.names() and "failed" not in rec.names()
    assert rec.names().count("cancelled") == 1
    assert not runner.is_running()


def test_new_job_supersedes_running_one(qtbot, make_runner):
    runner, rec = make_runner(engine=_slow_engine(steps=100))
    image, mask = _inputs()
    runner.run(image, mask, RunSettings(model="fake"))
    qtbot.waitUntil(lambda: len(rec.get("progress")) >= 1, timeout=10000)
    fast = image.copy()
    with qtbot.waitSignal(runner.finished, timeout=20000):
        runner._engine = lambda image, mask, **kw: fast
        runner.run(image, mask, RunSettings(model="fake"))
    assert len(rec.get("finished")) == 1 and "cancelled" not in rec.names()


def test_event_loop_keeps_ticking_during_a_fill(qtbot, make_runner):
    def long_telea(image, mask, progress=None, cancel=None, **kw):
        t0 = time.perf_counter()
        out = None
        n = 0
        while time.perf_counter() - t0 < 1.2:  # a real (repeated) telea fill, >= 1 s
            out = inpaint(image, mask, model="telea", strategy="original", cancel=cancel)
            n += 1
            if progress is not None:
                progress(ProgressEvent("telea", n, n + 1, time.perf_counter() - t0))
        return out

    runner, rec = make_runner(engine=long_telea)
    image, mask = _inputs(160, 200)
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
        runner.run(image, mask, RunSettings(model="fake"))
    took = time.perf_counter() - t0
    timer.stop()
    assert took >= 1.0
    assert len(gaps) > 20
    assert max(gaps) < 100, f"GUI thread blocked for {max(gaps)} ms"


def test_oom_retries_with_tiles(qtbot, make_runner):
    torch = pytest.importorskip("torch")
    calls = []

    def engine(image, mask, strategy=None, device=None, **kw):
        calls.append((strategy.name, device))
        if strategy.name != "tile":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return image.copy()

    runner, rec = make_runner(engine=engine)
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=10000) as blocker:
        runner.run(image, mask, RunSettings(model="fake", device="cuda"))
    res = blocker.args[0]
    assert calls[0][0] == "crop" and calls[1] == ("tile", "cuda")
    assert len(res.notes) == 1 and "tiles" in res.notes[0]
    assert any("out of memory" in a[0] for a in rec.get("notice"))


def test_oom_falls_back_to_cpu_then_reports_failure(qtbot, make_runner):
    calls = []

    def engine(image, mask, strategy=None, device=None, **kw):
        calls.append((strategy.name, device))
        if device != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return image.copy()

    runner, rec = make_runner(engine=engine)
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=10000) as blocker:
        runner.run(image, mask, RunSettings(model="fake", device="cuda"))
    res = blocker.args[0]
    assert [c[1] for c in calls] == ["cuda", "cuda", "cuda", "cpu"]
    assert [c[0] for c in calls[1:3]] == ["tile", "resize"]
    assert "CPU" in res.notes[-1] and len(res.notes) == 3

    def always_oom(image, mask, **kw):
        raise RuntimeError("CUDA out of memory")

    runner2, rec2 = make_runner(engine=always_oom)
    with qtbot.waitSignal(runner2.failed, timeout=10000) as blocker:
        runner2.run(image, mask, RunSettings(model="fake", device="cuda"))
    msg, kind = blocker.args
    assert kind == "out_of_memory" and "out of memory" in msg
    assert "finished" not in rec2.names()


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


def test_generic_error_never_crashes(qtbot, make_runner):
    def boom(image, mask, **kw):
        raise ZeroDivisionError("boom")

    runner, rec = make_runner(engine=boom)
    image, mask = _inputs()
    with qtbot.waitSignal(runner.failed, timeout=10000) as blocker:
        runner.run(image, mask, RunSettings(model="fake"))
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


def test_oom_plan_shrinks_work():
    plan = oom_fallbacks(HDStrategy("crop", resize_limit=1280), 512, "cuda")
    assert [p[1].name for p in plan] == ["tile", "resize", "crop"]
    assert plan[0][1].tile_size == 512 and plan[1][1].resize_limit == 512 and plan[2][0] == "cpu"
    assert [p[0] for p in oom_fallbacks(HDStrategy("tile", tile_size=128), 512, "cpu")] == ["cpu"]


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
    specs = {n: ModelSpec(name=n, title=n, task="inpaint", native_size=s)
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


def test_worker_installs_shared_cache_into_pipeline(qtbot, make_runner):
    from inpaint_gui.engine import pipeline
    runner, _rec = make_runner()
    image, mask = _inputs()
    with qtbot.waitSignal(runner.finished, timeout=20000):
        runner.run(image, mask, RunSettings(model="telea", strategy=HDStrategy("original")))
    assert pipeline.MODEL_CACHE is model_cache.shared_cache()
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


def test_dock_and_runner_wiring(qtbot, make_runner):
    from inpaint_gui.ui.models_dock import ModelsDock, bind_runner
    runner, rec = make_runner(engine=_slow_engine(steps=300))
    dock = ModelsDock()
    qtbot.addWidget(dock)
    bind_runner(dock, runner)
    image, mask = _inputs()
    dock.run_requested.connect(lambda s: runner.run(image, mask, s))
    dock.select_model("telea")
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.progress_bar.value() > 0, timeout=10000)
    assert dock.cancel_button.isEnabled() and dock.is_running()
    with qtbot.waitSignal(runner.cancelled, timeout=10000):
        dock.cancel_button.click()
    assert not dock.is_running() and dock.status_label.text() == "cancelled"
