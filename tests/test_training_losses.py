"""Losses, discriminators and the VGG extractor on tiny hand-computed cases."""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from inpaint_gui.training import losses as L
from inpaint_gui.training.discriminators import AOTDiscriminator, SRNDiscriminator
from inpaint_gui.training.vgg import VGGFeatures, layer_names, load_vgg, pick_layers

SPECS = Path("/work/shared/specs")


def test_rfr_valid_and_hole_l1():
    gt = torch.zeros(1, 1, 2, 2)
    out = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    known = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert L.masked_l1(gt, out, known).item() == pytest.approx((1 + 4) / 4)
    assert L.masked_l1(gt, out, 1 - known).item() == pytest.approx((2 + 3) / 4)
    # the full RFR loss with its official weights (substitute instead of VGG)
    gt3 = torch.zeros(1, 3, 16, 16)
    out3 = torch.full((1, 3, 16, 16), 0.5)
    k3 = torch.ones(1, 3, 16, 16)
    k3[..., :8, :] = 0  # top half is the hole
    total, parts = L.RFRLoss(None)(out3, gt3, k3)
    assert parts["valid"].item() == pytest.approx(0.25)
    assert parts["hole"].item() == pytest.approx(0.25)
    # comp * (1 - M): 0.5 inside the hole, 0 outside -> only the hole edge row has |dy| = 0.5
    assert parts["tv"].item() == pytest.approx(0.5 * 16 / (15 * 16))
    expect = 1 * 0.25 + 6 * 0.25 + 0.1 * parts["tv"].item() + 0.5 * parts["substitute"].item()
    assert total.item() == pytest.approx(expect)


def test_gram_and_style():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    g = L.gram_matrix(f)
    assert torch.allclose(g, torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)
    assert L.style_loss([f], [f]).item() == 0
    f2 = f * 2  # gram scales by 4 -> |G2 - G| = 3 G
    assert L.style_loss([f], [f2]).item() == pytest.approx((3 * g).abs().mean().item())
    assert L.perceptual_loss([f], [f2], [0.5]).item() == pytest.approx(0.5 * 2.5)


def test_smgan_labels_are_gaussian_softened_mask():
    hole = torch.zeros(1, 1, 96, 96)
    hole[..., 32:64, 32:64] = 1
    lab = L.smgan_labels(hole)
    # independent 2-D computation: kornia-style kernel, zero padding 35
    x = torch.arange(71, dtype=torch.float64) - 35
    g = torch.exp(-x ** 2 / 200)
    g = g / g.sum()
    k2 = torch.outer(g, g).float()
    ref = F.conv2d(hole, k2[None, None], padding=35)
    assert torch.allclose(lab, ref, atol=1e-6)
    assert 0 < lab.min() and lab.max() < 1  # softened everywhere
    assert lab[0, 0, 48, 48] > lab[0, 0, 48, 20] > lab[0, 0, 48, 2]
    small = L.smgan_labels(hole, size=(11, 11))
    assert small.shape[-2:] == (11, 11)
    assert torch.allclose(small, F.interpolate(ref, size=(11, 11), mode="bilinear", align_corners=True), atol=1e-6)


def test_smgan_losses_zero_at_targets():
    hole = torch.zeros(2, 1, 32, 32)
    hole[:, :, 8:20, 8:20] = 1
    soft = L.smgan_labels(hole)
    paper = L.SMGANLoss(convention="paper")
    assert paper.d_loss(1 - soft, torch.ones_like(soft), hole).item() == pytest.approx(0, abs=1e-12)
    assert paper.g_loss(torch.ones_like(soft), hole).item() == pytest.approx(0, abs=1e-12)
    # G: only the hole counts, normalised by the hole area
    g = paper.g_loss(torch.where(hole > 0, 0.0, 5.0), hole)
    assert g.item() == pytest.approx(1.0)
    off = L.SMGANLoss(convention="official")
    assert off.d_loss(soft, torch.zeros_like(soft), hole).item() == pytest.approx(0, abs=1e-12)
    # D patch maps are upsampled (bilinear, align_corners) to the mask size
    assert paper.d_loss(torch.ones(2, 1, 6, 6), torch.ones(2, 1, 6, 6), hole).item() > 0


def test_srn_kernel_and_relative_spatial_variant_weight():
    k = L.srn_gauss_kernel(64, 1 / 40)
    assert k.shape == (64, 64) and abs(k.sum().item() - 1) < 1e-5
    assert (k / (1 / 4096) - 1).abs().max().item() < 5e-4  # uniform within 0.05 %
    unknown = torch.zeros(1, 1, 40, 48)
    unknown[..., :, 24:] = 1  # right half to predict
    w = L.relative_spatial_variant_weight(unknown)
    # reference: direct 2-D 'SAME' conv (31 before / 32 after) with the 64x64 kernel
    c = 1 - unknown
    p_prev = p = None
    for i in range(9):
        p = F.conv2d(F.pad(c, (31, 32, 31, 32)), k[None, None].double().float()) * unknown
        if i == 7:
            p_prev = p
        c = p + (1 - unknown)
    ref = p_prev / (p + 1e-5)
    assert torch.allclose(w, ref, atol=1e-5)
    assert (w[..., :24] == 0).all()
    row = w[0, 0, 20, 24:]
    assert (row > 0).all() and (row <= 1.0001).all()
    assert (row[1:] <= row[:-1] + 1e-6).all()  # weights fall with distance from the known area


def test_srn_reconstruction_loss_values():
    gt = torch.zeros(1, 3, 16, 16)
    pred = torch.full_like(gt, 0.5)
    unknown = torch.zeros(1, 1, 16, 16)
    unknown[..., 8:] = 1
    wgt = torch.full_like(unknown, 0.25) * unknown
    total, parts = L.srn_reconstruction_loss(pred, gt, unknown, wgt)
    assert parts["ae"].item() == pytest.approx(1.2 * 0.5)
    assert parts["l1"].item() == pytest.approx(1.2 * 0.5 * 0.25 * 0.5)
    assert total.item() == pytest.approx(4.2 * parts["l1"].item() + 1.2 * parts["ae"].item())


def test_id_mrf_and_wgan_gp():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 8, 6, 6, generator=g)
    b = torch.randn(2, 8, 6, 6, generator=g)
    same = L.id_mrf_layer(a, a).item()
    diff = L.id_mrf_layer(a, b).item()
    assert same < 1e-3 < diff
    # linear critic D(x) = sum(w x): gradient w, slope = sqrt(sum w^2 mask)
    w = torch.full((1, 3, 4, 4), 0.5)
    mask = torch.zeros(1, 3, 4, 4)
    mask[..., :2, :] = 1
    pen = L.wgan_gp_penalty(lambda x: (x * w).flatten(1).sum(1), torch.zeros(2, 3, 4, 4),
                            torch.ones(2, 3, 4, 4), mask)
    slope = math.sqrt(0.25 * 24)
    assert pen.item() == pytest.approx((slope - 1) ** 2, rel=1e-5)
    m8 = L.max_pool_same(torch.ones(1, 1, 20, 20), 3)
    assert m8.shape[-2:] == (3, 3)


def test_substitute_loss():
    s = L.SubstituteLoss()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert s(x, x).item() == pytest.approx(0, abs=1e-6)
    assert s(x, x.flip(-1)).item() > 0.1


def test_aot_discriminator_official_keys():
    d = AOTDiscriminator()
    sd = d.state_dict()
    assert sum(p.numel() for p in d.parameters()) == 2763777
    ref_path = SPECS / "keys_aot_discriminator.json"
    if ref_path.is_file():
        ref = json.loads(ref_path.read_text())
        assert [(k, list(v.shape)) for k, v in sd.items()] == [(k, s) for k, s, _ in ref]
    d2 = AOTDiscriminator()
    d2.load_state_dict(sd, strict=True)
    with torch.no_grad():
        assert d2(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)
    assert AOTDiscriminator(cnum=16)(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_srn_discriminator_shapes():
    d = SRNDiscriminator(256)
    assert sum(p.numel() for p in d.parameters()) == 2912898
    assert d.dout_global_fc.weight.shape == (1, 32768)
    small = SRNDiscriminator(64, cnum=8)
    x = torch.zeros(2, 3, 64, 64)
    m = torch.ones(2, 1, 8, 8)
    gs, cs = small(x, m)
    assert gs.shape == (2,) and cs.shape == (2,)


def test_vgg_torchvision_keys_roundtrip(tmp_path):
    assert layer_names("vgg16")[16] == "pool3" and layer_names("vgg19")[29] == "relu5_1"
    assert layer_names("vgg19")[21] == "conv4_2"
    net = VGGFeatures("vgg16")
    sd = {k: v for k, v in net.state_dict().items()}
    assert "features.28.weight" in sd and len([k for k in sd if k.endswith("weight")]) == 13
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    torch.save(sd, tmp_path / "vgg16.pth")
    loaded = load_vgg(tmp_path / "vgg16.pth")
    assert loaded.kind == "vgg16"
    x = torch.rand(1, 3, 32, 32)
    a = net(x, ["relu3_3", "pool1"])
    b = loaded(x, ["relu3_3", "pool1"])
    assert torch.equal(a["relu3_3"], b["relu3_3"]) and a["pool1"].shape == (1, 64, 16, 16)
    assert pick_layers("vgg16", ["relu3_4", "relu5_2"]) == ["relu3_3", "relu5_2"]
    # the VGG-based losses run with it
    tot, parts = L.AOTLoss(loaded)(x * 2 - 1, x.flip(-1) * 2 - 1)
    assert {"l1", "perceptual", "style"} <= set(parts) and tot.item() > 0


def _grass(size=64):
    """A crop of real grass from the sample photo, (1,3,size,size) in [-1, 1]."""
    from inpaint_gui.engine.imageio import load_image
    im = load_image(Path(__file__).resolve().parents[1] / "resources" / "samples" / "cows.jpg").rgb
    crop = im[620:620 + size, 30:30 + size].copy()
    return crop, torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_random_texture_loss_scores_a_shifted_texture_above_a_blurred_one():
    import cv2
    crop, x = _grass(128)
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 32:96, 32:96] = 1
    blurred = torch.from_numpy(cv2.GaussianBlur(crop, (0, 0), 2)).permute(2, 0, 1)[None].float() / 127.5 - 1
    shifted = torch.roll(x, (3, 5), (2, 3))
    torch.manual_seed(123)  # the net's weights come from its own seed, not from the global one
    a = L.RandomTextureLoss()
    torch.manual_seed(456)
    b = L.RandomTextureLoss()
    assert all(torch.equal(getattr(a, f"w{i}"), getattr(b, f"w{i}")) for i in range(len(a.channels)))
    assert not torch.equal(a.w0, L.RandomTextureLoss(seed=1).w0)
    assert a(x, x, hole).item() == pytest.approx(0, abs=1e-7)
    # L1 prefers the blur; the texture term prefers the grass, displaced by a few pixels
    assert (blurred - x).abs().mean() < (shifted - x).abs().mean()
    assert a(shifted, x, hole).item() * 3 < a(blurred, x, hole).item()
    # it looks inside the hole only: damage outside the hole is not its business
    outside = x.clone()
    outside[..., :16, :] = 0
    assert a(outside, x, hole).item() == pytest.approx(0, abs=1e-7)


def test_random_texture_loss_brings_back_detail_in_a_blurred_hole():
    """Gradient descent on the term alone turns a blurred hole into one as detailed as grass,
    as measured by the issue's hole-texture metric."""
    import cv2
    from inpaint_gui.training.metrics import hole_texture
    crop, x = _grass(64)
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 16:48, 16:48] = 1
    p = (torch.from_numpy(cv2.GaussianBlur(crop, (0, 0), 3)).permute(2, 0, 1)[None].float() / 127.5 - 1)
    p.requires_grad_(True)
    loss = L.RandomTextureLoss()
    opt = torch.optim.Adam([p], lr=0.02)

    def texture():
        comp = (p.detach() * hole + x * (1 - hole))[0].permute(1, 2, 0)
        img = ((comp + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        return hole_texture(img, crop, hole[0, 0].numpy() > 0)

    before = texture()
    for _ in range(100):
        opt.zero_grad()
        loss(p * hole + x * (1 - hole), x, hole).backward()
        opt.step()
    assert before < 0.5
    assert texture() > 0.75


def test_aot_loss_adds_the_texture_term_on_the_composite():
    _, x = _grass(64)
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 16:48, 16:48] = 1
    pred = x.flip(-1)
    plain = L.AOTLoss(None)
    assert "texture" not in plain(pred, x)[1] and plain.texture is None
    tex = L.AOTLoss(None, weights={"texture": 0.5})
    total, parts = tex(pred, x, hole)
    assert any(k.startswith("random_texture_gram") for k in tex.active_terms())
    comp = hole * pred + (1 - hole) * x
    assert parts["texture"].item() == pytest.approx(L.RandomTextureLoss()(comp, x, hole).item())
    assert total.item() == pytest.approx(plain(pred, x)[0].item() + 0.5 * parts["texture"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="hole"):
        tex(pred, x)


def test_log_mse_is_the_mean_of_per_photo_log_errors_over_the_hole():
    gt = torch.zeros(2, 3, 8, 8)
    pred = gt.clone()
    hole = torch.zeros(2, 1, 8, 8)
    hole[..., 4:] = 1
    pred[0] += 0.1 * hole[0]          # photo 0: error 0.1 everywhere in its hole
    pred[1] += 0.02 * hole[1]         # photo 1: a near-perfect fill
    pred[:, :, :, :4] += 5.0          # known pixels do not count, however wrong
    got = L.log_mse_loss(pred, gt, hole, eps=1e-4)
    assert got.item() == pytest.approx((math.log(0.01 + 1e-4) + math.log(0.0004 + 1e-4)) / 2, rel=1e-6)
    # each photo pulls by its relative error: the near-perfect one gets the larger per-pixel push
    pred.requires_grad_(True)
    L.log_mse_loss(pred, gt, hole).backward()
    g0, g1 = pred.grad[0, :, :, 4:].abs().mean(), pred.grad[1, :, :, 4:].abs().mean()
    assert (pred.grad[:, :, :, :4] == 0).all()
    assert g1 / g0 == pytest.approx((0.02 / 0.1) * (0.01 + 1e-4) / (0.0004 + 1e-4), rel=1e-4)
    # plain L1 pulls both photos the same per pixel
    pred.grad = None
    ((pred - gt).abs() * hole).mean().backward()
    assert pred.grad[0, :, :, 4:].abs().mean() == pytest.approx(pred.grad[1, :, :, 4:].abs().mean().item())


def test_psnr_weight_adds_log_mse_to_the_aot_and_srn_losses():
    _, x = _grass(32)
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    pred = x.flip(-1)
    plain_total = L.AOTLoss(None)(pred, x, hole)[0]
    aot = L.AOTLoss(None, weights={"psnr": 0.05})
    total, parts = aot(pred, x, hole)
    assert "log_mse_hole (per-photo PSNR)" in aot.active_terms()
    assert parts["log_mse"].item() == pytest.approx(L.log_mse_loss(pred, x, hole).item())
    assert total.item() == pytest.approx(plain_total.item() + 0.05 * parts["log_mse"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="hole"):
        aot(pred, x)
    unknown = torch.zeros(1, 1, 32, 32)
    unknown[..., 16:] = 1
    base, bparts = L.srn_reconstruction_loss(pred, x, unknown)
    assert "log_mse" not in bparts
    total, parts = L.srn_reconstruction_loss(pred, x, unknown, w={"psnr": 0.5})
    assert parts["log_mse"].item() == pytest.approx(L.log_mse_loss(pred, x, unknown).item())
    assert total.item() == pytest.approx(base.item() + 0.5 * parts["log_mse"].item(), rel=1e-6)
