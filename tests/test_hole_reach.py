"""A weight set's hole reach: holes deeper than the starter's weights can carry colour into are
filled on a smaller window, so a large hole in a flat sky does not come back as an off-colour
blob."""
import numpy as np
import pytest

from inpaint_gui import engine
from inpaint_gui.engine.models.aot import STARTER_REACH
from inpaint_gui.engine.registry import get_spec
from inpaint_gui.engine.settings import SettingsError


def test_loader_takes_the_weight_sets_reach_and_the_users():
    assert get_spec("aot").weight_set("starter").hole_reach == STARTER_REACH
    assert not any(ws.hole_reach for ws in get_spec("aot").weight_sets if ws.kind == "official")
    assert engine.load_model("aot", weights="aot:starter").hole_reach == STARTER_REACH
    assert engine.load_model("aot", weights="aot:starter", hole_reach="32").hole_reach == 32
    assert engine.load_model("aot", weights="aot:starter", hole_reach=0).hole_reach is None
    with pytest.raises(SettingsError, match="hole_reach must be a whole number"):
        engine.load_model("aot", weights="aot:starter", hole_reach="deep")
    # RFR: the weight set's reach is below the network's own (its recurrences); 0 turns the
    # weight set's off and the network's stays; a larger one than the network's changes nothing
    from inpaint_gui.engine.models.rfr import STARTER_REACH as RFR_REACH
    assert engine.load_model("rfr", weights="rfr:starter").hole_reach == RFR_REACH
    own = engine.load_model("rfr", weights="rfr:starter", hole_reach=0).hole_reach
    assert own > RFR_REACH
    assert engine.load_model("rfr", weights="rfr:starter", hole_reach=own + 50).hole_reach == own
    assert engine.load_model("rfr", weights="rfr:starter", hole_reach=20).hole_reach == 20


def _worst_block(colour, reach=None):
    """Largest RGB distance of a 16x16 block's mean from the field's colour, in levels, for a
    uniform 512x512 field with a 256x256 square hole filled by the AOT starter."""
    img = np.zeros((512, 512, 3), np.uint8) + np.uint8(colour)
    mask = np.zeros((512, 512), np.uint8)
    mask[128:384, 128:384] = 255
    opts = {} if reach is None else {"hole_reach": reach}
    out = engine.inpaint(img, mask, model=engine.load_model("aot", weights="aot:starter", **opts))
    assert np.array_equal(out[mask == 0], img[mask == 0])
    blocks = out[128:384, 128:384].astype(np.float64).reshape(16, 16, 16, 16, 3).mean((1, 3))
    return float(np.linalg.norm(blocks - np.float64(colour), axis=-1).max())


@pytest.mark.parametrize("colour", [(230, 99, 29), (120, 170, 230)], ids=["orange", "sky"])
def test_a_large_hole_in_a_flat_field_keeps_its_colour(colour):
    # 30 levels (about 12 % of the range): within its reach the starter's own bias on flat
    # fields is 10-25 levels over five colours (grey, lilac, orange, green, sky; 22 797-step
    # weights); beyond it the fill drifts 23-92 levels (orange 92, sky 63), a patch anyone sees
    assert _worst_block(colour) <= 30
    assert _worst_block(colour, reach=0) > 30  # the whole 512-px window: the drift comes back
