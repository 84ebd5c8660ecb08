"""Function-preserving growth of trained generators (training.grow)."""
import pytest
import torch

from inpaint_gui.engine.nets import srn
from inpaint_gui.training import trainer as T
from inpaint_gui.training.grow import deepen_aot, grow_state_dict, widen_srn


def _trained_looking(net):
    with torch.no_grad():  # away from the initialisation, so zero/identity parts are not special
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def test_deepened_aot_generator_computes_the_same_function():
    torch.manual_seed(0)
    small = _trained_looking(T.create_generator("aot", "tiny"))
    big = T.create_generator("aot", "tiny", block_num=6).eval()
    big.load_state_dict(deepen_aot(small.state_dict(), 6), strict=True)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = (torch.rand(2, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        ya, yb = small.forward_plain(x * (1 - m), m), big.forward_plain(x * (1 - m), m)
    assert (ya - yb).abs().max() < 1e-5 and ya.abs().mean() > 0.01
    with pytest.raises(ValueError, match="cannot deepen"):
        deepen_aot(small.state_dict(), 3)


@pytest.mark.parametrize("margins", [(0, 0, 32, 32), (16, 16, 16, 16), (0, 32, 32, 0)])
def test_widened_srn_generator_computes_the_same_function(margins):
    torch.manual_seed(1)
    small = _trained_looking(srn.create(cnum=8))
    sd = {k: v.half() for k, v in small.state_dict().items()}  # as a snapshot stores it
    small.load_state_dict({k: v.float() for k, v in sd.items()})
    wide_sd = widen_srn(sd, 16)
    assert all(v.dtype == torch.float16 for v in wide_sd.values())
    wide = srn.create(cnum=16).eval()
    wide.load_state_dict({k: v.float() for k, v in wide_sd.items()}, strict=True)
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in small.parameters())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ya, yb = small(x, margins), wide(x, margins)
    assert (ya - yb).abs().max() < 1e-5 and ya.abs().mean() > 0.01
    # the new channels are live (they feed the trained ones once those weights move)
    with torch.no_grad():
        _, inter = wide(x, margins, return_intermediates=True)
    assert inter["fen_out"][:, 8:].abs().mean() > 1e-3


def test_growth_that_cannot_keep_the_function_is_refused():
    sd = T.create_generator("aot", "tiny").state_dict()
    with pytest.raises(ValueError, match="no function-preserving growth"):
        grow_state_dict("aot", {"channels": 16, "block_num": 4}, {"channels": 32, "block_num": 4}, sd)
    with pytest.raises(ValueError, match="no function-preserving growth"):
        grow_state_dict("rfr", {}, {}, sd)


def test_srn_growth_through_the_variant_options_keeps_the_function():
    """The dispatcher the programme uses (constructor options in, state dict out), at a width
    that is not a multiple of the old one."""
    torch.manual_seed(2)
    small = _trained_looking(srn.create(cnum=8))
    sd = {k: v.half() for k, v in small.state_dict().items()}
    small.load_state_dict({k: v.float() for k, v in sd.items()})
    wide = srn.create(cnum=12).eval()
    wide.load_state_dict({k: v.float() for k, v in grow_state_dict("srn", {"cnum": 8}, {"cnum": 12}, sd).items()},
                         strict=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ya, yb = small(x, (8, 0, 24, 32)), wide(x, (8, 0, 24, 32))
    assert (ya - yb).abs().max() < 1e-5 and ya.abs().mean() > 0.01
    with pytest.raises(ValueError, match="no function-preserving growth"):
        grow_state_dict("srn", {"cnum": 12}, {"cnum": 8}, sd)
