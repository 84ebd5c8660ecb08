"""Training programmes: compact snapshots that resume on another machine where the run stopped."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_gui.training import programme as P
from inpaint_gui.training import trainer as T


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i in range(8):
        y, x = np.mgrid[0:96, 0:112].astype(np.float32)
        img = np.stack([np.sin(x * rng.uniform(0.05, 0.2)), np.cos(y * rng.uniform(0.05, 0.2)),
                        (x + y) / 208 * 2 - 1], -1) * 0.4 + 0.5
        img = np.clip(img * 255 + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"p{i}.png")
    return root


PLAN = [{"name": "small", "until": 4, "size": 48, "batch": 2},
        {"name": "large", "until": 7, "size": 64, "batch": 2, "adv_weight": 0.05, "texture_weight": 0.2,
         "psnr_weight": 0.05}]


def _cfg(photos, out, arch="aot", **kw):
    base = dict(arch=arch, variant="tiny", data=str(photos), out=str(out), size=48, steps=4, batch=2,
                threads=1, workers=0, val_every=0, val_count=2, ckpt_every=100, log_every=100, cache_mb=64,
                rewarm=3)
    base.update(kw)
    return T.TrainConfig(**base)


def _recording(tr, seen):
    """Record (step, scheduled lr, lr factor, hash of the batch's masks and images) per step."""
    make = tr.batches.batch
    apply = tr.arch.apply_lr

    def batch(step):
        imgs, holes = make(step)
        seen.setdefault(step, {})["data"] = hashlib.sha1(imgs.tobytes() + holes.tobytes()).hexdigest()
        return imgs, holes

    def apply_lr(step, factor=1.0):
        lr = apply(step, factor)
        seen.setdefault(step, {}).update(lr=lr, factor=factor, applied=tr.arch.opt_g.param_groups[0]["lr"])
        return lr

    tr.batches.batch = batch
    tr.arch.apply_lr = apply_lr


def _start(photos, tmp_path, name="state"):
    tr = T.Trainer(_cfg(photos, tmp_path / f"{name}_init"), log=None)
    try:
        P.new_programme(tr, tmp_path / name, PLAN)
    finally:
        tr.close()
    return tmp_path / name


def _continue(photos, state, out, until=None, seen=None):
    """One session: read the committed snapshot, train the current phase up to ``until``."""
    snap = P.read_snapshot(P.state_path(state, "aot"))
    phase = P.phase_at(snap["state"]["plan"], snap["state"]["step"])
    cfg = P.phase_config(snap["state"], phase, str(photos), str(out), threads=1, workers=0, val_every=0,
                         val_count=2, ckpt_every=100, log_every=100, cache_mb=64)
    tr = T.Trainer(cfg, log=None, snapshot=snap)
    if seen is not None:
        _recording(tr, seen)
    try:
        res = tr.run(until=until)
        P.write_snapshot(tr, state)
    finally:
        tr.close()
    return tr, res


def test_resumed_snapshot_continues_schedule_and_masks(photos, tmp_path):
    # one session trains phase "small" to its end (4 steps)
    a = _start(photos, tmp_path, "a")
    seen_a = {}
    _continue(photos, a, tmp_path / "ra", seen=seen_a)
    # another stops after 2 steps, commits, and a new "machine" resumes from the committed files
    b = _start(photos, tmp_path, "b")
    seen_b = {}
    _continue(photos, b, tmp_path / "rb1", until=2, seen=seen_b)
    st = P.read_state(P.state_path(b, "aot"))
    assert st["step"] == 2 and st["schedule"]["lr_at_step"] == pytest.approx(1e-4)
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in b.iterdir():  # the committed snapshot alone must be enough
        (moved / f.name).write_bytes(f.read_bytes())
    tr, res = _continue(photos, moved, tmp_path / "rb2", seen=seen_b)
    assert res["status"] == "finished" and tr.step == 4
    assert sorted(seen_a) == sorted(seen_b) == [0, 1, 2, 3]
    for k in range(4):
        assert seen_b[k]["data"] == seen_a[k]["data"]      # same crops and masks, batch for batch
        assert seen_b[k]["lr"] == seen_a[k]["lr"]          # same scheduled learning rate
    # the resumed session re-warms Adam from 0.1x over `rewarm` steps, then runs at the schedule
    assert seen_b[2]["factor"] == pytest.approx(0.1 + 0.9 / 3)
    assert seen_b[2]["applied"] == pytest.approx(seen_b[2]["lr"] * seen_b[2]["factor"])
    st = P.read_state(P.state_path(moved, "aot"))
    assert st["step"] == 4
    # the next phase starts from here with its own settings
    snap = P.read_snapshot(P.state_path(moved, "aot"))
    ph = P.phase_at(snap["state"]["plan"], snap["state"]["step"])
    cfg = P.phase_config(snap["state"], ph, str(photos), str(tmp_path / "rb3"))
    assert (ph["name"], cfg.size, cfg.adv_weight, cfg.texture_weight, cfg.psnr_weight, cfg.steps) == \
        ("large", 64, 0.05, 0.2, 0.05, 7)


def test_reloaded_snapshot_is_strict_and_identical(photos, tmp_path):
    state = _start(photos, tmp_path)
    tr, _ = _continue(photos, state, tmp_path / "r1", until=2)
    g_file = state / "aot_g.pt"
    sd = torch.load(g_file, weights_only=True)
    assert all(v.dtype == torch.float16 for v in sd.values() if v.dtype.is_floating_point)
    # the snapshot is a plain fp16 state dict the app loads strictly, like models/aot_starter.pt
    from inpaint_gui import engine
    model = engine.load_model("aot", weights=str(g_file))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 20:40] = 255
    out1 = engine.inpaint(img, mask, model=model)
    ref = T.create_generator("aot", "tiny")
    ref.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model2 = engine.load_model("aot", weights=ref.state_dict())
    assert np.array_equal(out1, engine.inpaint(img, mask, model=model2))
    # a trainer started from the snapshot holds exactly those weights: re-saving is byte-identical
    snap = P.read_snapshot(P.state_path(state, "aot"))
    tr2 = T.Trainer(_cfg(photos, tmp_path / "r2"), log=None, snapshot=snap)
    try:
        again = tmp_path / "again"
        P.write_snapshot(tr2, again)
    finally:
        tr2.close()
    assert (again / "aot_g.pt").read_bytes() == g_file.read_bytes()
    assert (again / "aot_d.pt").read_bytes() == (state / "aot_d.pt").read_bytes()
    assert P.read_state(P.state_path(again, "aot"))["step"] == 2
    # a snapshot of another variant is refused by name, a non-matching key set by the strict load
    with pytest.raises(ValueError, match="tiny"):
        T.Trainer(_cfg(photos, tmp_path / "r3", variant="small"), log=None, snapshot=snap)


def test_snapshot_checksums_and_plan_errors(photos, tmp_path):
    state = _start(photos, tmp_path)
    g = state / "aot_g.pt"
    g.write_bytes(g.read_bytes()[:-100])  # a partly written or edited file
    with pytest.raises(ValueError, match="sha256"):
        P.read_snapshot(P.state_path(state, "aot"))
    g.unlink()
    with pytest.raises(FileNotFoundError, match="aot_g.pt"):
        P.read_snapshot(P.state_path(state, "aot"))
    st = P.read_state(P.state_path(state, "aot"))
    with pytest.raises(ValueError, match="unknown setting"):
        P.phase_config(st, {"name": "x", "until": 9, "sise": 64}, str(photos), str(tmp_path / "o"))
    assert P.phase_at(PLAN, 7) is None and P.phase_at(PLAN, 0)["name"] == "small"
    (tmp_path / "not.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a training-programme state"):
        P.read_state(tmp_path / "not.json")


def test_run_programme_walks_the_plan_and_records_sessions(photos, tmp_path, monkeypatch):
    state = _start(photos, tmp_path)
    evals = []
    monkeypatch.setattr(P, "evaluate_in_subprocess", lambda *a, **k: evals.append(a))
    res = P.run_programme("aot", str(photos), state_dir=state, minutes=5, run_root=tmp_path / "runs",
                          log=None, threads=1, workers=0, val_every=0, val_count=2, cache_mb=64)
    assert res["status"] == "plan complete"
    st = P.read_state(P.state_path(state, "aot"))
    assert st["step"] == 7
    assert [(s["phase"], s["step_from"], s["step_to"]) for s in st["sessions"]] == [("small", 0, 4), ("large", 4, 7)]
    assert st["cpu_hours"] > 0 and all(s["threads"] == 1 for s in st["sessions"])
    assert len(evals) == 2  # one per finished phase


def test_evaluation_failure_does_not_stop_training(tmp_path):
    """The programme's evaluation runs in a fresh interpreter; a failure is logged, not raised."""
    lines = []
    assert P.evaluate_in_subprocess(tmp_path / "nowhere", "aot", str(tmp_path), log=lines.append) is False
    assert lines and lines[-1].startswith("[eval] failed:") and "no programme state" in lines[-1]


def test_status_lists_plan_position_and_curve(photos, tmp_path, capsys):
    state = _start(photos, tmp_path)
    st = P.read_state(P.state_path(state, "aot"))
    st["evals"] = [{"step": 3, "cpu_hours": 0.5, "baseline": "telea",
                    "bins": {"20-30": {"psnr": 25.0, "ssim": 0.9, "texture": 0.41,
                                       "dpsnr_vs_telea": 0.73, "dssim_vs_telea": 0.002}}}]
    text = P.status_markdown(st)
    assert "step 0, phase small" in text and "small until 4" in text and "large until 7" in text
    assert "| 3 | 0.50 | +0.73 / +0.0020 / 0.41 |" in text
    from inpaint_gui.training.cli_train import main_train
    assert main_train(["--status", "aot", "--state-dir", str(state)]) == 0
    assert "aot / tiny" in capsys.readouterr().out
    assert main_train(["--status", "aot", "--state-dir", str(tmp_path / "none")]) == 2


def test_evaluation_runs_the_variant_it_trains(photos, tmp_path, monkeypatch):
    """A bare state dict cannot say everything about its variant (RFR's recurrence count
    shares its weights): the evaluation passes the programme's constructor options."""
    tr = T.Trainer(_cfg(photos, tmp_path / "rfr_init", arch="rfr", size=48), log=None)
    try:
        P.new_programme(tr, tmp_path / "state", [{"name": "a", "until": 10}])
    finally:
        tr.close()
    seen = []

    def fake_evaluate(model, data, **kw):
        seen.append((model, kw.get("model_options")))
        return {"cases": {"20-30": {"psnr": 20.0, "ssim": 0.8}}, "errors": {}}

    import inpaint_gui.training.evaluate as E
    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    monkeypatch.setattr(E, "load_eval_images", lambda data, n, size: (["a.png"], [None]))
    P.evaluate_snapshot(tmp_path / "state", "rfr", str(photos), bins="20-30")
    opts = dict(seen[-1][1])
    assert seen[-1][0] == "rfr" and opts["recurrences"] == 4 and opts["kernel_size"] == 5


def test_a_phase_can_change_the_training_masks(photos, tmp_path):
    """``mask_mix`` in a phase: the trainer draws that mix (here RFR's with compact object
    holes); an unknown mix is refused by name before anything trains."""
    state = _start(photos, tmp_path)
    st = P.read_state(P.state_path(state, "aot"))
    phase = {"name": "objects", "until": 9, "size": 48, "batch": 2, "mask_mix": "rfr_objects"}
    cfg = P.phase_config(st, phase, str(photos), str(tmp_path / "o"), threads=1, workers=0, val_every=0,
                         val_count=2, cache_mb=64)
    assert cfg.mask_mix == "rfr_objects"
    tr = T.Trainer(cfg, log=None)
    try:
        assert "object" in tr.batches.mask_fn.names
    finally:
        tr.close()
    plain = T.Trainer(_cfg(photos, tmp_path / "plain"), log=None)
    try:
        assert "object" not in plain.batches.mask_fn.names
    finally:
        plain.close()
    with pytest.raises(ValueError, match="unknown mask_mix 'blobs'"):
        P.phase_config(st, dict(phase, mask_mix="blobs"), str(photos), str(tmp_path / "o"))


def test_a_snapshot_is_evaluated_once(photos, tmp_path, monkeypatch):
    """A phase whose last checkpoint is also an evaluation step is not evaluated again at the
    end of the run (the same snapshot)."""
    state = _start(photos, tmp_path)
    evals = []
    monkeypatch.setattr(P, "evaluate_in_subprocess",
                        lambda *a, **k: evals.append(P.read_state(P.state_path(state, "aot"))["step"]))
    P.run_programme("aot", str(photos), state_dir=state, minutes=5, run_root=tmp_path / "runs", log=None,
                    eval_every=2, threads=1, workers=0, val_every=0, val_count=2, ckpt_every=2, cache_mb=64)
    assert evals == sorted(set(evals)) and evals[-1] == 7, evals


def test_growing_a_programme_keeps_its_function_and_continues(photos, tmp_path, monkeypatch):
    """A programme that flattens for lack of capacity moves to a deeper AOT variant: the grown
    generator computes the same fill, the step and schedule stay, training goes on from there."""
    monkeypatch.setitem(T.VARIANTS["aot"], "tiny8", dict(channels=16, block_num=8))
    monkeypatch.setitem(T.D_CNUM, "tiny8", T.D_CNUM["tiny"])
    state = _start(photos, tmp_path)
    _continue(photos, state, tmp_path / "r1", until=2)
    before = (state / "aot_g.pt").read_bytes()
    small_file = tmp_path / "small_g.pt"
    small_file.write_bytes(before)
    P.grow_programme(state, "aot", "tiny8", note="capacity")
    st = P.read_snapshot(P.state_path(state, "aot"))["state"]  # checksums verified
    assert (st["variant"], st["config"]["variant"], st["step"]) == ("tiny8", "tiny8", 2)
    assert st["net_kwargs"] == {"channels": 16, "block_num": 8}
    assert st["growth"][-1]["from"] == "tiny" and st["growth"][-1]["note"] == "capacity"
    sd = torch.load(state / "aot_g.pt", weights_only=True)
    small_sd = torch.load(small_file, weights_only=True)
    assert st["params_G"] == sum(v.numel() for v in sd.values()) > sum(v.numel() for v in small_sd.values())
    # same fill from the 4-block and the grown 8-block weights, as the app loads them
    from inpaint_gui import engine
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (96, 96, 3)).astype(np.uint8)
    mask = np.zeros((96, 96), np.uint8)
    mask[20:70, 30:60] = 255
    m_small = engine.load_model("aot", weights=str(small_file))
    m_big = engine.load_model("aot", weights=str(state / "aot_g.pt"))
    assert m_big.net.config["block_num"] == 8 and m_small.net.config["block_num"] == 4
    a = engine.inpaint(img, mask, model=m_small).astype(int)
    b = engine.inpaint(img, mask, model=m_big).astype(int)
    assert np.abs(a - b).max() <= 1 and (a != img).any()
    # the grown programme trains on at the same step
    tr, res = _continue(photos, state, tmp_path / "r2")
    assert res["status"] == "finished" and tr.step == 4
    st = P.read_state(P.state_path(state, "aot"))
    assert st["variant"] == "tiny8" and st["growth"][-1]["to"] == "tiny8"  # the record outlives checkpoints
    # a growth that cannot keep the function is refused in words
    with pytest.raises(ValueError, match="no function-preserving growth"):
        P.grow_programme(state, "aot", "small")



def test_a_phase_planned_for_a_grown_variant_waits_for_the_growth(photos, tmp_path, monkeypatch):
    """A phase that names a variant refuses, in words and before training a step, to train a
    snapshot that has not been grown to it; once grown, the programme goes on at the same step."""
    monkeypatch.setitem(T.VARIANTS["aot"], "tiny8", dict(channels=16, block_num=8))
    monkeypatch.setitem(T.D_CNUM, "tiny8", T.D_CNUM["tiny"])
    monkeypatch.setattr(P, "evaluate_in_subprocess", lambda *a, **k: None)
    state = _start(photos, tmp_path)
    _continue(photos, state, tmp_path / "r1", until=4)  # the end of the first phase
    p = P.state_path(state, "aot")
    st = json.loads(p.read_text())
    st["plan"][1]["variant"] = "tiny8"
    p.write_text(json.dumps(st))
    before = (state / "aot_g.pt").read_bytes()
    run = dict(state_dir=state, minutes=5, run_root=tmp_path / "runs", log=None, threads=1, workers=0,
               val_every=0, val_count=2, cache_mb=64)
    with pytest.raises(ValueError, match=r"trains the tiny8 variant, but the snapshot is the tiny one.*--grow tiny8"):
        P.run_programme("aot", str(photos), **run)
    assert P.read_state(p)["step"] == 4 and (state / "aot_g.pt").read_bytes() == before
    P.grow_programme(state, "aot", "tiny8")
    res = P.run_programme("aot", str(photos), **run)
    st = P.read_state(p)
    assert res["status"] == "plan complete" and (st["step"], st["variant"]) == (7, "tiny8")
    assert [(s["phase"], s["step_from"], s["step_to"]) for s in st["sessions"]][-1] == ("large", 4, 7)
