"""Training-photo pool: the .rcc reader and the selection/split logic of `inpaint data collect`.

Everything runs on hand-built files in a temporary folder: no network, apt or pip.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from inpaint_gui.training import collect, rcc


# --------------------------------------------------------------------------- helpers
def build_rcc(files: dict[str, tuple[bytes, str]], version: int = 3) -> bytes:
    """Write a Qt binary resource bundle by the format rules.

    files: {"dir/sub/name.ext": (payload, "none" | "zlib")}.  Nodes are laid out
    like rcc does: root first, the children of each directory consecutive and
    sorted by qt_hash, directories expanded breadth-first.
    """
    tree: dict = {}
    for path, spec in files.items():
        parts = path.strip("/").split("/")
        d = tree
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = spec

    names = bytearray()
    name_off: dict[str, int] = {}

    def name_entry(n: str) -> int:
        if n not in name_off:
            name_off[n] = len(names)
            u = n.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(u) // 2, rcc.qt_hash(n)) + u)
        return name_off[n]

    data = bytearray()
    nodes: list[tuple] = [("", tree)]  # (name, dict | (payload, comp))
    encoded: list[bytes] = []
    i = 0
    child_ranges: dict[int, tuple[int, int]] = {}
    while i < len(nodes):  # breadth-first numbering
        _, obj = nodes[i]
        if isinstance(obj, dict):
            kids = sorted(obj.items(), key=lambda kv: rcc.qt_hash(kv[0]))
            child_ranges[i] = (len(kids), len(nodes))
            nodes.extend(kids)
        i += 1
    for idx, (n, obj) in enumerate(nodes):
        noff = name_entry(n) if idx else 0
        if isinstance(obj, dict):
            count, first = child_ranges[idx]
            node = struct.pack(">IHII", noff, rcc.FLAG_DIRECTORY, count, first)
        else:
            payload, comp = obj
            flags = 0
            if comp == "zlib":
                payload = struct.pack(">I", len(payload)) + zlib.compress(payload, 9)
                flags = rcc.FLAG_ZLIB
            doff = len(data)
            data.extend(struct.pack(">I", len(payload)) + payload)
            node = struct.pack(">IHHHI", noff, flags, 0, 1, doff)
        if version >= 2:
            node += struct.pack(">Q", 1_700_000_000_000)
        encoded.append(node)

    header_len = 24 if version >= 3 else 20
    tree_bytes = b"".join(encoded)
    tree_off = header_len
    data_off = tree_off + len(tree_bytes)
    names_off = data_off + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree_bytes + bytes(data) + bytes(names)


def image_bytes(w: int, h: int, fmt: str = "PNG", color=(200, 80, 40), mode: str = "RGB") -> bytes:
    im = Image.new(mode, (w, h), color)
    for x in range(0, w, 7):  # some structure, so JPEG sizes are not trivial
        im.putpixel((x, (x * 3) % h), (0, 0, 0) if mode == "RGB" else 0)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


# --------------------------------------------------------------------------- rcc
@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_lists_and_reads_entries(version):
    text = b"hello rcc " * 50
    blob = bytes(range(256)) * 3
    bundle = build_rcc(
        {
            "gcompris/src/act/resource/photo.webp": (blob, "none"),
            "gcompris/src/act/resource/README": (text, "zlib"),
            "gcompris/src/act/Act.qml": (b"import QtQuick 2.12\n", "none"),
            "top.txt": ("grüße ✓".encode(), "zlib"),
        },
        version=version,
    )
    r = rcc.RccReader(bundle)
    assert r.version == version
    paths = sorted(r.paths())
    assert paths == sorted([
        "/gcompris/src/act/resource/photo.webp",
        "/gcompris/src/act/resource/README",
        "/gcompris/src/act/Act.qml",
        "/top.txt",
    ])
    by_path = {e.path: e for e in r.entries()}
    assert by_path["/gcompris/src/act/resource/README"].compression == "zlib"
    assert by_path["/gcompris/src/act/resource/photo.webp"].compression == "none"
    assert r.read("/gcompris/src/act/resource/photo.webp") == blob
    assert r.read(":/gcompris/src/act/resource/README") == text  # Qt-style ':' prefix accepted
    assert r.read(by_path["/top.txt"]).decode() == "grüße ✓"
    got = dict(r.iter_files(lambda p: p.endswith(".webp")))
    assert list(got) == ["/gcompris/src/act/resource/photo.webp"]
    with pytest.raises(KeyError):
        r.read("/nope.png")


def test_rcc_extract_and_errors(tmp_path):
    bundle = build_rcc({"a/b/c.jpg": (b"\xff\xd8jpeg", "none"), "a/d.svg": (b"<svg/>" * 20, "zlib")})
    f = tmp_path / "x.rcc"
    f.write_bytes(bundle)
    written = rcc.RccReader.open(f).extract(tmp_path / "out", accept=lambda p: p.endswith(".jpg"))
    assert [os.path.relpath(p, tmp_path / "out") for p in written] == [os.path.join("a", "b", "c.jpg")]
    assert (tmp_path / "out" / "a" / "b" / "c.jpg").read_bytes() == b"\xff\xd8jpeg"

    with pytest.raises(rcc.RccError):
        rcc.RccReader(b"RIFF" + bundle[4:])
    with pytest.raises(rcc.RccError):
        rcc.RccReader(bundle[:-40]).entries()  # names/data cut off


def test_qt_hash_known_values():
    # qt_hash is the classic ELF-style hash over UTF-16 code units
    assert rcc.qt_hash("") == 0
    assert rcc.qt_hash("a") == 0x61
    assert rcc.qt_hash("ab") == (0x61 << 4) + 0x62
    h = 0
    for ch in "resource_images_long_name.webp":
        h = (h << 4) + ord(ch)
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    assert rcc.qt_hash("resource_images_long_name.webp") == h


# --------------------------------------------------------------------------- split / selection
def test_split_is_deterministic_and_about_eight_percent():
    keys = [f"pkg:/usr/share/x/photo{i}.jpg" for i in range(5000)]
    splits = [collect.split_of(k) for k in keys]
    assert splits == [collect.split_of(k) for k in keys]
    frac = splits.count("val") / len(keys)
    assert 0.065 < frac < 0.095
    assert all(collect.split_of(k, 0.0) == "train" for k in keys[:200])


def test_near_duplicates_share_a_group():
    mk = lambda **kw: collect.PhotoSpec(**{"package": "p", "container": "fs", "path": "/a.jpg",  # noqa: E731
                                            "width": 800, "height": 600, "kind": "photo", **kw})
    assert mk(path="/x/donna.jpg").group == mk(path="/y/donna_2.jpg").group
    assert mk(path="/x/fish1.jpg").group != mk(path="/x/fish2.jpg").group
    url = "Someone <https://commons.wikimedia.org/wiki/File:Colosseum.jpg>"
    a = mk(container="a.rcc", path="/g/colosseum.webp", author=url)
    b = mk(container="b.rcc", path="/h/wonders/colosseum_big.webp", author=url)
    assert a.group == b.group


def test_packaged_manifest_is_consistent():
    specs = collect.load_manifest()
    assert len(specs) > 400
    containers = {s.container for s in specs}
    assert {"fs", "deb", "wheel"} <= containers
    assert all(c in ("fs", "deb", "wheel") or c.endswith(".rcc") for c in containers)
    assert all(s.kind == ("photo" if s.min_side >= 256 else "photo_small") for s in specs)
    assert all(s.licence for s in specs)
    packages = {s.package for s in specs}
    assert packages <= set(collect.DEB_PACKAGES) | set(collect.DEB_DOWNLOAD_ONLY) | set(collect.WHEEL_DISTS)
    names = [collect.output_name(s) for s in specs]
    assert len(set(names)) == len(names)
    sel = collect.select(specs, min_side=256)
    assert 280 < len(sel) < len(specs)
    val = sum(collect.split_of(s.group) == "val" for s in specs)
    assert 0.04 < val / len(specs) < 0.14


# --------------------------------------------------------------------------- end to end on a fake tree
MANIFEST_HEADER = "package\tcontainer\tpath\twidth\theight\tkind\tlicence\tauthor\n"


def _fake_sources(tmp_path):
    root = tmp_path / "root"
    bg = root / "usr/share/backgrounds"
    bg.mkdir(parents=True)
    rows = []
    # 30 installed wallpapers, one of them large with EXIF-less RGBA PNG, one grey
    for i in range(30):
        (bg / f"wall{i}.jpg").write_bytes(image_bytes(640, 400, "JPEG", (10 * i % 255, 90, 160)))
        rows.append(("mate-backgrounds", "fs", f"/usr/share/backgrounds/wall{i}.jpg", 640, 400, "photo", "GPL-2+", "A"))
    (bg / "huge.png").write_bytes(image_bytes(2000, 1200, "PNG", (10, 200, 10, 128), mode="RGBA"))
    rows.append(("lxqt-themes", "fs", "/usr/share/backgrounds/huge.png", 2000, 1200, "photo", "CC0-1.0", "B"))
    (bg / "grey.png").write_bytes(image_bytes(300, 300, "PNG", 128, mode="L"))
    rows.append(("scikit-image", "fs", "/usr/share/backgrounds/grey.png", 300, 300, "photo", "CC0-1.0", "C"))
    # a tiny one the default --min-side drops
    (bg / "tiny.jpg").write_bytes(image_bytes(120, 90, "JPEG"))
    rows.append(("kalzium-data", "fs", "/usr/share/backgrounds/tiny.jpg", 120, 90, "photo_small", "GPL-2+", "D"))
    # listed but not installed
    rows.append(("tuxpaint-data", "fs", "/usr/share/tuxpaint/templates/gone.jpg", 800, 600, "photo", "GPL-2+", "E"))
    # GCompris-style bundle: a stored webp and a zlib-compressed PNG
    rccdir = root / collect.GCOMPRIS_RCC_DIR
    rccdir.mkdir(parents=True)
    (rccdir / "erase.rcc").write_bytes(build_rcc({
        "gcompris/src/activities/erase/resource/alpaca.webp": (image_bytes(960, 540, "WEBP"), "none"),
        "gcompris/src/activities/erase/resource/crab.png": (image_bytes(400, 300, "PNG"), "zlib"),
        "gcompris/src/activities/erase/resource/Erase.qml": (b"Item {}", "zlib"),
    }))
    for n, w, h in (("alpaca.webp", 960, 540), ("crab.png", 400, 300)):
        rows.append(("gcompris-qt-data", "erase.rcc", f"/gcompris/src/activities/erase/resource/{n}", w, h,
                     "photo", "CC0-1.0", "F <https://example.org/" + n + ">"))
    # unpacked download-only .deb and a wheel, inside the cache
    cache = tmp_path / "cache"
    demo = cache / "deb/kphotoalbum/usr/share/kphotoalbum/demo"
    demo.mkdir(parents=True)
    (demo / "skagen.jpg").write_bytes(image_bytes(800, 600, "JPEG"))
    rows.append(("kphotoalbum", "deb", "/usr/share/kphotoalbum/demo/skagen.jpg", 800, 600, "photo", "GPL-2+", "G"))
    (cache / "wheels").mkdir()
    with zipfile.ZipFile(cache / "wheels/scikit_learn-9.9-cp311-cp311-manylinux_x86_64.whl", "w") as z:
        z.writestr("sklearn/datasets/images/china.jpg", image_bytes(427, 640, "JPEG"))
    rows.append(("scikit-learn", "wheel", "sklearn/datasets/images/china.jpg", 427, 640, "photo", "CC-BY-2.0", "H"))

    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("# test list\n" + MANIFEST_HEADER + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return root, cache, manifest


def _read_out_manifest(out):
    lines = (out / "manifest.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert tuple(header) == collect.OUT_COLUMNS
    return [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]


def test_collect_end_to_end_on_fake_tree(tmp_path, capsys):
    root, cache, manifest = _fake_sources(tmp_path)
    out = tmp_path / "pool"
    argv = ["collect", str(out), "--skip-install", "--no-download", "--root", str(root),
            "--cache", str(cache), "--manifest", str(manifest), "--max-side", "512", "--jobs", "2"]
    assert collect.main_collect(argv) == 0
    rows = _read_out_manifest(out)
    # 30 wallpapers + huge + grey + 2 from the rcc + deb + wheel; tiny (min side) and gone (missing) are not
    assert len(rows) == 36
    paths = {r["path"] for r in rows}
    assert "/usr/share/backgrounds/tiny.jpg" not in paths
    assert "/usr/share/tuxpaint/templates/gone.jpg" not in paths
    assert "/gcompris/src/activities/erase/resource/crab.png" in paths
    for r in rows:
        f = out / r["file"]
        assert f.is_file() and f.stat().st_size == int(r["bytes"])
        assert r["file"].startswith(r["split"] + "/")
        with Image.open(f) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (int(r["width"]), int(r["height"]))
            assert max(im.size) <= 512
        assert r["split"] == collect.split_of(collect.PhotoSpec(
            r["package"], r["container"], r["path"], 1, 1, "photo", r["licence"], r["author"]).group)
    huge = next(r for r in rows if r["path"].endswith("huge.png"))
    assert (int(huge["orig_width"]), int(huge["width"]), int(huge["height"])) == (2000, 512, 307)
    assert len({r["split"] for r in rows}) in (1, 2)
    text = capsys.readouterr().out
    assert "train" in text and "val" in text

    # re-run with other settings: same split per file, stale files removed, no extra files
    before = {r["path"]: r["split"] for r in rows}
    (out / "train" / "stale.jpg").write_bytes(b"x")
    assert collect.main_collect(argv[:-4] + ["--compact", "--min-side", "0", "--jobs", "1"]) == 0
    rows2 = _read_out_manifest(out)
    assert len(rows2) == 37  # now including the tiny one
    assert all(before[r["path"]] == r["split"] for r in rows2 if r["path"] in before)
    assert not (out / "train" / "stale.jpg").exists()
    on_disk = {f"{s}/{n}" for s in ("train", "val") for n in os.listdir(out / s)}
    assert on_disk == {r["file"] for r in rows2}


def test_collect_rejects_bad_arguments(tmp_path):
    assert collect.main_collect([]) == 2
    assert collect.main_collect(["fetch", str(tmp_path)]) == 2
    assert collect.main_collect(["collect", str(tmp_path / "o"), "--skip-install", "--no-download",
                                 "--jpeg-quality", "0"]) == 2


def test_collect_fails_cleanly_without_sources(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text(MANIFEST_HEADER + "mate-backgrounds\tfs\t/nothing/here.jpg\t800\t600\tphoto\tGPL-2+\tA\n")
    rc = collect.main_collect(["collect", str(tmp_path / "o"), "--skip-install", "--no-download",
                               "--root", str(tmp_path), "--cache", str(tmp_path / "c"), "--manifest", str(manifest)])
    assert rc == 1


def test_encode_jpeg_keeps_small_images_and_flattens_modes():
    jpg, ow, oh, w, h = collect.encode_jpeg(image_bytes(300, 200, "PNG", (1, 2, 3, 0), mode="RGBA"), 1024, 90)
    assert (ow, oh, w, h) == (300, 200, 300, 200)
    with Image.open(io.BytesIO(jpg)) as im:
        assert im.mode == "RGB"
        assert im.getpixel((150, 100))[0] > 240  # transparent areas become white, not black
    _, _, _, w, h = collect.encode_jpeg(image_bytes(1000, 3000, "JPEG"), 600, 80)
    assert (w, h) == (200, 600)
