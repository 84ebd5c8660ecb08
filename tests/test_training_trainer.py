"""Data pipeline, a few training steps, bitwise resume, SIGINT checkpoint, export."""
import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_gui.training import data as D
from inpaint_gui.training import trainer as T


def _photo(rng, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.05, 0.2, 3)
    img = np.stack([np.sin(x * f[0] + y * f[1]), np.cos(y * f[2]), (x + y) / (h + w) * 2 - 1], -1)
    img = (img * 0.4 + 0.5) * 255 + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(10):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(_photo(rng, int(rng.integers(80, 140)), int(rng.integers(80, 140)))).save(sub / f"p{i}.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def _cfg(photos, out, arch="aot", **kw):
    base = dict(arch=arch, variant="tiny", data=str(photos), out=str(out), size=64, steps=4, batch=2,
                threads=1, workers=0, val_every=0, val_count=2, ckpt_every=100, log_every=1, cache_mb=64)
    base.update(kw)
    return T.TrainConfig(**base)


def test_split_and_exif(photos, tmp_path):
    train, val = D.split_files(photos)
    assert len(train) + len(val) == 10 and not set(train) & set(val) and len(val) >= 4
    assert D.split_files(photos) == (train, val)
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    img = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "train" / "r.jpg", exif=exif)
    img.save(tmp_path / "val" / "v.png")
    tr, va = D.split_files(tmp_path)
    assert [p.name for p in tr] == ["r.jpg"] and [p.name for p in va] == ["v.png"]
    assert D.load_rgb(tmp_path / "train" / "r.jpg").shape == (40, 20, 3)


def test_batches_deterministic(photos):
    from inpaint_gui.training.masks import MaskSampler
    train, _ = D.split_files(photos)
    a = D.BatchSource(train, 48, 3, seed=5, mask_fn=MaskSampler("aot"), workers=0)
    b = D.BatchSource(train, 48, 3, seed=5, mask_fn=MaskSampler("aot"), workers=3)
    try:
        for step in (0, 1, 7):
            ia, ma = a.batch(step)
            ib, mb = b.batch(step)
            assert ia.shape == (3, 48, 48, 3) and ma.shape == (3, 48, 48)
            assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
        assert not np.array_equal(a.batch(2)[0], a.batch(3)[0])
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("arch", ["aot", "rfr", "srn"])
def test_few_steps_lower_the_loss(photos, tmp_path, arch):
    """Overfit one fixed 64x64 batch with the tiny variant of the real network."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = _cfg(photos, tmp_path, arch=arch, lr=1e-3, pretrain_steps=10 ** 6)
    at = T.ARCH_TRAINERS[arch](cfg, "cpu")
    at.build_optimizers()
    at.scaler_g = at.scaler_d = None
    train, _ = D.split_files(photos)
    if arch == "srn":
        from inpaint_gui.training.masks import random_outpaint_mask
        fn = lambda h, w, rng: random_outpaint_mask(h, w, rng, mode="srn")  # noqa: E731
    else:
        from inpaint_gui.training.masks import MaskSampler
        fn = MaskSampler(at.mask_mix)
    src = D.BatchSource(train, 64, 2, seed=1, mask_fn=fn, workers=0, shared_mask=at.shared_mask)
    imgs, holes = src.batch(0)
    img = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    hole = torch.from_numpy(holes.astype(np.float32))[:, None]
    at.G.train()
    key = {"aot": "l1", "rfr": "hole", "srn": "ae"}[arch]
    import contextlib
    n = 20 if arch == "srn" else 12  # SRN (ELU, betas 0.5/0.9) starts slower
    vals = [float(at.train_step(img, hole, s, contextlib.nullcontext)[key]) for s in range(n)]
    assert np.mean(vals[-3:]) < 0.85 * np.mean(vals[:2]), vals


def test_aot_step_with_the_texture_term(photos, tmp_path):
    """A phase's texture_weight reaches the AOT step: the term is listed, computed and trained."""
    import contextlib
    torch.manual_seed(0)
    cfg = _cfg(photos, tmp_path, arch="aot", texture_weight=0.5)
    at = T.ARCH_TRAINERS["aot"](cfg, "cpu")
    at.build_optimizers()
    at.scaler_g = at.scaler_d = None
    assert any(k.startswith("random_texture_gram") and v == 0.5 for k, v in at.active_losses(0).items())
    train, _ = D.split_files(photos)
    from inpaint_gui.training.masks import MaskSampler
    src = D.BatchSource(train, 48, 2, seed=1, mask_fn=MaskSampler(at.mask_mix), workers=0)
    imgs, holes = src.batch(0)
    img = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    hole = torch.from_numpy(holes.astype(np.float32))[:, None]
    before = [p.detach().clone() for p in at.G.parameters()]
    out = at.train_step(img, hole, 0, contextlib.nullcontext)
    assert 0 < float(out["texture"]) < 10
    assert any(not torch.equal(a, b) for a, b in zip(before, at.G.parameters()))
    assert not any(k.startswith("random_texture") for k in T.ARCH_TRAINERS["aot"](
        _cfg(photos, tmp_path / "plain", arch="aot"), "cpu").active_losses(0))


@pytest.mark.parametrize("arch", ["aot", "srn"])
def test_psnr_weight_reaches_the_step(photos, tmp_path, arch):
    """A phase's psnr_weight is listed among the run's losses and computed in the step."""
    import contextlib
    torch.manual_seed(0)
    cfg = _cfg(photos, tmp_path, arch=arch, psnr_weight=0.5, pretrain_steps=10 ** 6, srn_canvas="random")
    at = T.ARCH_TRAINERS[arch](cfg, "cpu")
    at.build_optimizers()
    at.scaler_g = at.scaler_d = None
    assert any(k.startswith("log_mse") and v == 0.5 for k, v in at.active_losses(0).items())
    from inpaint_gui.training.masks import MaskSampler
    train, _ = D.split_files(photos)
    src = D.BatchSource(train, 64, 2, seed=1, mask_fn=MaskSampler("aot"), workers=0)
    imgs, holes = src.batch(0)
    img = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    hole = torch.from_numpy(holes.astype(np.float32))[:, None]
    out = at.train_step(img, hole, 0, contextlib.nullcontext)
    assert -10 < float(out["log_mse"]) < 2  # ln of an MSE in [-1, 1] units
    plain = T.ARCH_TRAINERS[arch](_cfg(photos, tmp_path / "plain", arch=arch), "cpu")
    assert not any(k.startswith("log_mse") for k in plain.active_losses(0))


def _states(tr):
    out = {"G": tr.arch.G.state_dict(), "ema": tr.ema.state_dict()}
    if tr.arch.D is not None:
        out["D"] = tr.arch.D.state_dict()
    return out


@pytest.mark.parametrize("arch,extra", [("aot", {}), ("srn", {"pretrain_steps": 1, "d_steps": 1})])
def test_resume_is_bitwise_identical(photos, tmp_path, arch, extra):
    torch.set_num_threads(1)
    full = T.Trainer(_cfg(photos, tmp_path / "full", arch=arch, **extra), log=None)
    r = full.run()
    full.close()
    assert r["status"] == "finished" and r["step"] == 4

    part = T.Trainer(_cfg(photos, tmp_path / "part", arch=arch, workers=1, **extra), log=None)
    r1 = part.run(until=2)
    part.close()
    assert r1["status"] == "paused" and r1["export"] is None
    torch.manual_seed(1234)  # disturb the global RNG: the checkpoint must restore it
    np.random.seed(99)
    cont = T.Trainer(_cfg(photos, tmp_path / "part", arch=arch, **extra), resume=True, log=None)
    assert cont.step == 2
    r2 = cont.run()
    cont.close()
    assert r2["status"] == "finished"
    a, b = _states(full), _states(cont)
    for group in a:
        for k in a[group]:
            assert torch.equal(a[group][k], b[group][k]), (group, k)
    ea = torch.load(tmp_path / "full" / "export" / f"{arch}_starter.pt", weights_only=True)
    eb = torch.load(tmp_path / "part" / "export" / f"{arch}_starter.pt", weights_only=True)
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    lines = [json.loads(s) for s in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["type"] == "train"] == [1, 2, 3, 4]


def test_sigint_checkpoints_and_exports(photos, tmp_path):
    torch.set_num_threads(1)
    sent = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background

    def log(msg):
        if msg.startswith("[train] step 2/") and not sent:
            sent.append(1)
            signal.raise_signal(signal.SIGINT)

    tr = T.Trainer(_cfg(photos, tmp_path / "run", steps=50), log=log)
    r = tr.run()
    tr.close()
    assert r["status"] == "interrupted" and r["step"] == 2
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["step"] == 2 and ck["format"] == T.CKPT_FORMAT
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "interrupted"
    assert any("substitute" in k for k in meta["losses_active"])
    assert meta["vgg"] is None
    assert (tmp_path / "run" / "export" / "aot_starter.md").read_text().startswith("# AOT starter weights")
    # the handler is removed again: the one from before the run is back
    assert signal.getsignal(signal.SIGINT) is before


def test_export_loads_into_the_net(photos, tmp_path):
    torch.set_num_threads(1)
    tr = T.Trainer(_cfg(photos, tmp_path / "run", arch="rfr", steps=1), log=None)
    r = tr.run()
    tr.close()
    sd = torch.load(r["export"], weights_only=True)
    net = T.create_generator("rfr", "tiny")
    own = net.state_dict()
    assert list(sd) == list(own)
    assert all(v.dtype == (torch.float16 if own[k].dtype.is_floating_point else own[k].dtype) for k, v in sd.items())
    from inpaint_gui.engine.weights import load_into
    load_into(net, sd)
    meta = json.loads((tmp_path / "run" / "export" / "rfr_starter.json").read_text())
    assert meta["weight_set_options"] == T.VARIANTS["rfr"]["tiny"]
    assert meta["last_val"]["n"] == 2 and np.isfinite(meta["last_val"]["psnr"])


def test_cli_train_refuses_overwrite_and_resumes(photos, tmp_path, capsys):
    from inpaint_gui.training.cli_train import main_train
    args = ["--arch", "aot", "--variant", "tiny", "--data", str(photos), "--size", "64", "--out",
            str(tmp_path / "r"), "--steps", "1", "--batch", "1", "--threads", "1", "--workers", "0",
            "--val-count", "1", "--val-every", "0"]
    assert main_train(args) == 0
    assert main_train(args) == 2  # exists, no --resume
    assert main_train(["--arch", "aot", "--out", str(tmp_path / "r"), "--resume", "--steps", "2"]) == 0
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["step"] == 2
    assert main_train(["--arch", "aot", "--variant", "nope", "--data", "x", "--out", str(tmp_path / "q")]) == 2


@pytest.mark.parametrize("arch", ["rfr", "aot", "srn"])
def test_export_loads_in_model_adapter(photos, tmp_path, arch):
    """The exported starter file loads through the engine's adapter with the variant options."""
    from inpaint_gui import engine
    torch.set_num_threads(1)
    tr = T.Trainer(_cfg(photos, tmp_path / "run", arch=arch, steps=1, pretrain_steps=1, d_steps=1), log=None)
    r = tr.run()
    tr.close()
    opts = json.loads((tmp_path / "run" / "export" / f"{arch}_starter.json").read_text())["weight_set_options"]
    model = engine.load_model(arch, weights=r["export"], device="cpu", **opts)
    img = np.zeros((64, 64, 3), np.float32) + 0.5
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1
    out = model.predict(img, mask)
    assert out.shape == (64, 64, 3) and np.isfinite(out).all()


def test_vgg_terms_active_with_vgg_file(photos, tmp_path):
    """--vgg with a torchvision-format VGG16 file switches RFR to its perceptual/style terms."""
    from inpaint_gui.training.vgg import VGGFeatures
    torch.manual_seed(0)
    torch.save(VGGFeatures("vgg16").state_dict(), tmp_path / "vgg16.pth")
    torch.set_num_threads(1)
    tr = T.Trainer(_cfg(photos, tmp_path / "run", arch="rfr", steps=1, batch=1, size=48, val_count=1,
                         vgg=str(tmp_path / "vgg16.pth")), log=None)
    tr.run()
    tr.close()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["vgg"]["kind"] == "vgg16"
    keys = " ".join(meta["losses_active"])
    assert "style_vgg16_pool1+pool2+pool3" in keys and "perceptual_vgg16" in keys and "substitute" not in keys
    log = [json.loads(s) for s in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("style" in rec for rec in log if rec["type"] == "train")


def test_srn_random_canvas_geometry_and_step(photos, tmp_path):
    """SRN's reconstruction stage on random sub-canvases: always the 2x-per-axis geometry its
    feature expansion needs, of varied aspect, scale and window placement, the same for a step
    on every run; a training step on them lowers nothing it should not (finite loss)."""
    tr = T.Trainer(_cfg(photos, tmp_path / "srn", arch="srn", variant="tiny", size=64,
                        srn_canvas="random", pretrain_steps=100), log=None)
    try:
        a = tr.arch
        seen = set()
        for k in range(40):
            y0, x0, H, W, (t, l, b, r) = a.random_canvas(k, 64)
            assert a.random_canvas(k, 64) == (y0, x0, H, W, (t, l, b, r))
            assert 32 <= H <= 64 and 32 <= W <= 64 and H % 8 == 0 and W % 8 == 0
            assert 0 <= y0 <= 64 - H and 0 <= x0 <= 64 - W
            h, w = H - t - b, W - l - r
            assert (H, W) == (2 * h, 2 * w) and min(t, l, b, r) >= 0 and t % 4 == 0 and l % 4 == 0
            seen.add((H > W, H < W, t == 0 or b == 0, l == 0 or r == 0))
        assert len(seen) >= 4  # tall and wide canvases, windows at edges and inside
        imgs, holes = tr.batches.batch(0)
        out = a.train_step(T._to_tensor01(imgs, "cpu"), T._holes_tensor(holes, "cpu"), 0, tr._autocast)
        assert np.isfinite(float(out["loss"]))
    finally:
        tr.close()


def test_srn_sided_canvas_is_the_apps_one_sided_layout(photos, tmp_path):
    """``srn_canvas="sided"``: every step keeps the canvas "random" gives it; about
    ``SIDED_SHARE`` of the steps put the window flush against one side of one axis and centred
    on the other (the layout ``outpaint.plan_steps`` gives a one-sided extension), on all four
    sides; the other steps keep "random"'s layout. An unknown name is refused."""
    def trainer(kind, sub):
        return T.Trainer(_cfg(photos, tmp_path / sub, arch="srn", variant="tiny", size=64,
                              srn_canvas=kind, pretrain_steps=100), log=None)
    rnd, sided = trainer("random", "r"), trainer("sided", "s")
    try:
        n, one_sided, sides = 200, 0, set()
        for k in range(n):
            y0, x0, H, W, m = rnd.arch.random_canvas(k, 64)
            y0s, x0s, Hs, Ws, (t, l, b, r) = sided.arch.random_canvas(k, 64)
            assert (y0s, x0s, Hs, Ws) == (y0, x0, H, W)
            if (t, l, b, r) == m:
                continue
            one_sided += 1
            if l == 0 or r == 0:  # extends x by the whole window width, centred in y
                assert l + r == W // 2 and abs(t - b) <= 4 and t % 4 == 0
                sides.add("right" if l == 0 else "left")
            if t == 0 or b == 0:
                assert t + b == H // 2 and abs(l - r) <= 4 and l % 4 == 0
                sides.add("bottom" if t == 0 else "top")
            assert (l == 0 or r == 0) != (t == 0 or b == 0)
        assert sides == {"left", "right", "top", "bottom"}
        assert 0.35 * n <= one_sided <= T.SIDED_SHARE * n + 0.1 * n
    finally:
        rnd.close()
        sided.close()
    with pytest.raises(ValueError, match="srn_canvas"):
        trainer("sideways", "x")
