"""Qt-free weight store and `inpaint models` (issue 22, item 10): where official checkpoints
come from, checking and installing a downloaded file under the name the app expects."""
import json
import os
import sys

import numpy as np
import pytest

from inpaint_gui import cli
from inpaint_gui.engine import registry
from inpaint_gui.engine import weight_store as S
from inpaint_gui.engine import weights as W

sys.path.insert(0, os.path.dirname(__file__))
import tinyweights as T  # noqa: E402


def _all_official():
    return [(spec, ws) for spec in registry.list_models() for ws in spec.weight_sets
            if ws.kind == "official"]


def _leftover_temp_files(d):
    return [p.name for p in d.iterdir() if p.name.startswith(".")] if d.is_dir() else []


# ============================================================================ sources

def test_every_official_checkpoint_has_source_file_name_size_and_card():
    pairs = _all_official()
    assert len(pairs) >= 10
    for spec, ws in pairs:
        assert ws.filename, ws
        assert S.source_urls(ws.source), f"{spec.name}/{ws.name}: no web address in its source"
        assert ws.size, f"{spec.name}/{ws.name}: no size"
        card = S.card_path(ws.card)
        assert card is not None and card.is_file(), (spec.name, ws.card)
        assert ws.filename in card.read_text(encoding="utf-8"), (spec.name, ws.filename)
    listed = S.official_weights()
    names = {n for o in listed for n in [o.filename] + o.also_accepted}
    assert names == {ws.filename for _s, ws in pairs}
    # the download page comes before the repository page
    aot = next(o for o in listed if o.model == "aot" and o.weight_set.name == "places2")
    assert aot.urls[0].startswith("https://drive.google.com/") and "aot_places2.pt" in \
        aot.also_accepted


def test_source_urls_are_cleaned():
    text = ("https://github.com/a/b (commit 1): folder https://drive.google.com/x?usp=sharing, "
            "(https://example.org/y).")
    assert S.source_urls(text) == ["https://drive.google.com/x?usp=sharing",
                                   "https://example.org/y", "https://github.com/a/b"]


# ============================================================================ import

def test_import_installs_under_the_expected_name(tmp_path, monkeypatch):
    spec = T.install_spec(monkeypatch)
    dl = T.save(tmp_path / "downloaded_generator.pth")
    check = S.import_for_weight_set(dl, "tinynet", "free")
    dest = W.user_models_dir() / "tinynet_free.pth"
    assert check.target == dest and dest.read_bytes() == dl.read_bytes()
    assert "stored as tinynet_free.pth" in check.message
    assert W.weight_status(spec)[:2] == ("official", spec.weight_set("free"))
    assert _leftover_temp_files(W.user_models_dir()) == []
    assert dl.exists()  # the download is copied, not moved
    # the same file again: left alone
    again = S.import_for_weight_set(dl, "tinynet", "free")
    assert "already installed" in again.message


def test_a_published_sha256_admits_only_that_file(tmp_path, monkeypatch):
    good = T.save(tmp_path / "a.pth", seed=1)
    other = T.save(tmp_path / "b.pth", seed=2)
    T.install_spec(monkeypatch, pinned_sha=T.sha256(good))
    with pytest.raises(S.ImportWeightsError, match="sha256"):
        S.import_for_weight_set(other, "tinynet", "pinned")
    assert not (W.user_models_dir() / "tinynet_pinned.pth").exists()
    check = S.import_for_weight_set(good, "tinynet", "pinned")
    assert check.known_file and "checksum verified" in check.message
    assert [(v.ok, v.tag, v.expected) for v in S.verify(["tinynet:pinned"])] == [
        (True, "tinynet:pinned", T.sha256(good))]


def test_a_truncated_download_is_refused(tmp_path, monkeypatch):
    T.install_spec(monkeypatch)
    full = T.save(tmp_path / "full.pth", width=4)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(S.ImportWeightsError, match="incomplete"):
        S.import_for_weight_set(cut, "tinynet", "free")
    assert not (W.user_models_dir() / "tinynet_free.pth").exists()


class _Evil:
    """Pickles to a call that would create a file if the loader ran code from the file."""

    marker = ""

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_code_in_a_checkpoint_is_never_run(tmp_path, monkeypatch):
    import torch
    T.install_spec(monkeypatch)
    marker = tmp_path / "code_ran.txt"
    _Evil.marker = str(marker)
    bad = tmp_path / "evil.pth"
    torch.save({"state_dict": T.create(4).state_dict(), "extra": _Evil()}, bad)
    # this adapter reads with torch.load(weights_only=True), which refuses the file
    with pytest.raises(S.ImportWeightsError, match="contains code that would run"):
        S.import_for_weight_set(bad, "tinynet", "free")
    assert not marker.exists()
    evil_only = tmp_path / "evil_only.pth"
    torch.save(_Evil(), evil_only)
    with pytest.raises(S.ImportWeightsError):
        S.import_for_weight_set(evil_only, "tinynet", "free")
    # detection goes through the restricted unpickler: the call becomes an inert placeholder
    with pytest.raises(S.ImportWeightsError):
        S.inspect_weight_file(evil_only)
    assert not marker.exists()
    assert not (W.user_models_dir() / "tinynet_free.pth").exists()


def test_a_file_of_another_network_is_refused(tmp_path, monkeypatch):
    T.install_spec(monkeypatch)
    narrow = T.save(tmp_path / "narrow.pth", width=2)  # the official sets are width 4
    with pytest.raises(S.ImportWeightsError, match="does not fit Tiny Net"):
        S.import_for_weight_set(narrow, "tinynet", "free")
    with pytest.raises(S.ImportWeightsError, match="no weight set"):
        S.import_for_weight_set(narrow, "tinynet", "nope")


def test_an_existing_different_file_is_kept_unless_replacing_is_confirmed(tmp_path, monkeypatch):
    T.install_spec(monkeypatch)
    first = T.save(tmp_path / "first.pth", seed=1)
    second = T.save(tmp_path / "second.pth", seed=2)
    S.import_for_weight_set(first, "tinynet", "free")
    dest = W.user_models_dir() / "tinynet_free.pth"
    check = S.inspect_for_weight_set(second, "tinynet", "free")
    assert S.target_differs(check)
    with pytest.raises(S.ImportWeightsError, match="already exists"):
        S.install_checked(check)
    assert dest.read_bytes() == first.read_bytes()
    S.install_checked(S.inspect_for_weight_set(second, "tinynet", "free"), overwrite=True)
    assert dest.read_bytes() == second.read_bytes()
    assert _leftover_temp_files(W.user_models_dir()) == []


def _tiny_srn_tf_checkpoint(folder):
    """A genuine TensorFlow V2 checkpoint of a small SRN generator (cnum 16)."""
    from inpaint_gui.engine import tfckpt
    from inpaint_gui.engine.nets import create
    net = create("srn", cnum=16)
    tf = {}
    for k, v in net.state_dict().items():
        mod, kind = k.rsplit(".", 1)
        arr = v.numpy()
        name = "inpaint_net/" + mod.replace(".", "/") + ("/kernel" if kind == "weight" else "/bias")
        tf[name] = arr.transpose(2, 3, 1, 0) if arr.ndim == 4 else arr
    tf["inpaint_net/conv1/kernel/Adam"] = np.zeros(1, np.float32)  # optimizer slots are dropped
    prefix = tfckpt.write_checkpoint(folder / "snap-100", tf)
    return prefix, net.state_dict()


def test_an_srn_tensorflow_checkpoint_is_converted_on_import(tmp_path):
    import torch
    prefix, sd = _tiny_srn_tf_checkpoint(tmp_path / "celebahq-srn-subpixel")
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp"))) if os.name == "posix" else set()
    check = S.import_for_weight_set(prefix + ".index", "srn", "celebahq-256")
    dest = W.user_models_dir() / "srn_celebahq256.pt"
    assert check.target == dest and "converted from TensorFlow" in check.message
    got = torch.load(dest, map_location="cpu", weights_only=True)
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    assert not check.source.exists()  # the temporary conversion is cleaned up
    if before:
        after = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
        assert not [n for n in after - before if n.startswith("inpaint-convert-")]


# ============================================================================ CLI

def _run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_inpaint_models_prints_where_official_weights_come_from(capsys):
    rc, out, _ = _run(["models"], capsys)
    assert rc == 0
    assert "inpaint models import FILE --set MODEL:SET" in out
    for o in S.official_weights():
        assert f"\n{o.model}:{o.weight_set.name}  (" in out
        assert o.filename in out and o.urls[0] in out and o.size in out
    rc2, out2, _ = _run(["models", "list"], capsys)
    assert rc2 == 0 and out2 == out
    rc, out, _ = _run(["models", "--json"], capsys)
    data = json.loads(out)
    got = {(o["model"], o["weights"]): o for o in data["official"]}
    aot = got[("aot", "celebahq")]
    assert aot["filename"] == "aot_celebahq.pt" and aot["urls"] and aot["size"]
    assert aot["tag"] == "aot:celebahq"
    assert aot["sha256"] is None and aot["card"].endswith("aot_official.md")


def test_inpaint_models_import(tmp_path, monkeypatch, capsys):
    T.install_spec(monkeypatch)
    first = T.save(tmp_path / "first.pth", seed=1)
    second = T.save(tmp_path / "second.pth", seed=2)
    dest = W.user_models_dir() / "tinynet_free.pth"
    rc, _, err = _run(["models", "import", first, "--model", "tinynet", "--set", "free"], capsys)
    assert rc == 0 and dest.read_bytes() == first.read_bytes() and str(dest) in err
    rc, _, err = _run(["models", "import", second, "--model", "tinynet", "--set", "free"], capsys)
    assert rc == 1 and "--overwrite" in err and dest.read_bytes() == first.read_bytes()
    rc, _, _ = _run(["models", "import", second, "--model", "tinynet", "--set", "free",
                     "--overwrite"], capsys)
    assert rc == 0 and dest.read_bytes() == second.read_bytes()
    rc, _, err = _run(["models", "import", second, "--set", "free"], capsys)
    assert rc == 1 and "--set needs the model: MODEL:SET" in err
    cut = tmp_path / "cut.pth"
    cut.write_bytes(first.read_bytes()[:100])
    rc, _, err = _run(["models", "import", cut, "--model", "tinynet", "--set", "free"], capsys)
    assert rc == 1 and "not imported" in err and dest.read_bytes() == second.read_bytes()
    rc, _, err = _run(["models", "import", first, "--set", "tinynet:free", "--overwrite"], capsys)
    assert rc == 0 and dest.read_bytes() == first.read_bytes()  # the tag names model and set
    rc, _, err = _run(["models", "import", first, "--model", "aot", "--set", "tinynet:free"],
                      capsys)
    assert rc == 1 and "a weight set of tinynet, not of aot" in err


def test_remove_by_tag_or_path_never_a_bundled_file(tmp_path, monkeypatch, capsys):
    spec = T.install_spec(monkeypatch)
    S.import_for_weight_set(T.save(tmp_path / "a.pth"), "tinynet", "free")
    dest = W.user_models_dir() / "tinynet_free.pth"
    assert [i.where for i in S.weight_sets() if i.spec is spec] == [
        "imported", "not installed", "not installed"]
    assert S.remove_weight_file("tinynet:free") == dest and not dest.exists()
    with pytest.raises(S.ImportWeightsError, match="tinynet:free is not installed"):
        S.remove_weight_file("tinynet:free")
    bundled = S.installed_file("aot:starter")[1]
    with pytest.raises(S.ImportWeightsError, match="bundled files cannot be removed"):
        S.remove_weight_file("aot:starter")
    rc, _, err = _run(["models", "remove", str(bundled)], capsys)
    assert rc == 1 and "not removed" in err and bundled.is_file()
    S.import_for_weight_set(T.save(tmp_path / "a.pth"), "tinynet", "free")
    rc, _, err = _run(["models", "remove", str(dest)], capsys)
    assert rc == 0 and f"removed {dest}" in err and not dest.exists()


def test_verify_compares_the_published_sha256_and_finds_broken_files(tmp_path, monkeypatch,
                                                                     capsys):
    good = T.save(tmp_path / "a.pth", seed=1)
    T.install_spec(monkeypatch, pinned_sha=T.sha256(good))
    S.import_for_weight_set(good, "tinynet", "pinned")
    S.import_for_weight_set(T.save(tmp_path / "b.pth", seed=2), "tinynet", "free")
    (W.user_models_dir() / "notes.pth").write_text("not weights")
    by_name = {v.path.name: v for v in S.verify()}
    assert by_name["tinynet_pinned.pth"].ok and by_name["tinynet_free.pth"].ok
    assert by_name["tinynet_free.pth"].expected is None  # nothing published to compare with
    assert not by_name["notes.pth"].ok and by_name["notes.pth"].tag is None
    assert by_name["aot_starter.pt"].ok  # the bundled starter matches its pinned sha256
    rc, out, _ = _run(["models", "verify", "tinynet:pinned"], capsys)
    assert rc == 0 and out.startswith("ok: tinynet:pinned") and "matches the published" in out
    # the installed pinned file is replaced behind the app's back
    pinned = W.user_models_dir() / "tinynet_pinned.pth"
    pinned.write_bytes(T.save(tmp_path / "c.pth", seed=3).read_bytes())
    rc, out, _ = _run(["models", "verify", "tinynet:pinned", "tinynet:free"], capsys)
    assert rc == 1 and out.startswith("MISMATCH: tinynet:pinned") and "\nok: tinynet:free" in out
    rc, _, err = _run(["models", "verify", "tinynet:small"], capsys)
    assert rc == 1 and "tinynet:small is not installed" in err
