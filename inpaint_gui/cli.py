"""Command-line interface: ``inpaint`` (also ``python -m inpaint_gui.cli``).

Subcommands::

    inpaint run IMAGE MASK -o OUT [--model NAME] [--weights FILE|MODEL:SET] [--strategy S] ...
    inpaint batch --images DIR --masks DIR_OR_FILE --out DIR [same options as run]
    inpaint models [list] [--json]   (weights of every model, and where the official ones come from)
    inpaint models import FILE [--set MODEL:SET | --model NAME] [--overwrite]
    inpaint models remove MODEL:SET|FILE
    inpaint models verify [MODEL:SET|FILE ...]   (sha256 against the published one)
    inpaint models convert-srn CKPT_PREFIX -o OUT.pt [--overwrite]

A weight set is named by its tag MODEL:SET (e.g. aot:places2, see 'inpaint models'); anything
else given as weights is a file.
    inpaint train|eval|bench|data ...   (options belong to those tools; see their --help)

Exit status: 0 success; 1 a failure (bad input, missing weights, some batch items failed);
2 wrong usage; 130 interrupted. Errors are one line on stderr: ``inpaint: error: ...``.

EXIF, ICC profile, alpha channel and 16-bit depth of the input are written back to the output
(where the output format can hold them; otherwise a warning says what was dropped). An empty
mask writes the image unchanged (a byte copy of the file when the output format is the same).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

PROG = "inpaint"

#: Subcommands owned by other modules: name -> (module, function, what it is).
PASSTHROUGH = {
    "train": ("inpaint_gui.training.cli_train", "main_train", "train or fine-tune a model"),
    "eval": ("inpaint_gui.training.cli_eval", "main_eval", "evaluate models on a test set"),
    "bench": ("inpaint_gui.bench", "main_bench", "measure speed and memory"),
    "data": ("inpaint_gui.training.collect", "main_collect",
             "collect training data (data collect OUT)"),
}

MASK_SUFFIXES = ("", "_mask", "-mask", ".mask", "_Mask", "_MASK")


class CliError(Exception):
    """A user-facing failure: printed as ``inpaint: error: <message>``, exit status 1."""


# ============================================================================ output helpers

def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def _info(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {msg}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


class _Bar:
    """A progress bar on stderr: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, total: int, enabled: bool = True, width: int = 24) -> None:
        self.total = max(1, total)
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self._drawn = False

    def _bar(self, done: int) -> str:
        filled = int(round(self.width * done / self.total))
        return "[" + "#" * filled + "-" * (self.width - filled) + "]"

    def update(self, done: int, label: str) -> None:
        """Redraw the bar (terminal only; elsewhere :meth:`step` lines carry the count)."""
        if not self.enabled or not self.tty:
            return
        sys.stderr.write(f"\r\x1b[K{self._bar(done)} {done}/{self.total} {label}")
        sys.stderr.flush()
        self._drawn = True

    def step(self, done: int, text: str, force: bool = False) -> None:
        """Report one finished item: a line with the bar (not on a terminal unless ``force``:
        there the redrawn bar is enough, but errors are always printed)."""
        if self.tty and not force:
            return
        if self.enabled or force:
            self.message(f"{self._bar(done)} {done}/{self.total} {text}")

    def message(self, text: str) -> None:
        """Print a line without garbling the bar."""
        if self.tty and self._drawn:
            sys.stderr.write("\r\x1b[K")
        print(text, file=sys.stderr)

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ============================================================================ argument parsing

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number 1-100, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 1-100, got {value}")
    return value


def _add_model_options(p: argparse.ArgumentParser) -> None:
    # the lists' one home is the engine; importing these modules does not import torch
    from .engine.blending import BLEND_MODES
    from .engine.devices import DEVICES, PRECISIONS
    from .engine.pipeline import STRATEGIES
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", default="auto",
                   help="model name (see 'inpaint models'), or 'auto' to choose from the mask "
                        "(default: auto)")
    g.add_argument("--weights", "-w", metavar="FILE_OR_SET",
                   help="weight file to use instead of the installed one, or an installed "
                        "weight set as MODEL:SET (e.g. aot:places2; see 'inpaint models')")
    g.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. patchmatch: patch_size=3, seed=7; "
                        "telea/ns: radius=5)")
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="where networks run (default: auto = cuda, then mps, then cpu)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="network precision (default: fp32): fp16/bf16 on CUDA; bf16 also on "
                        "CPUs with native bf16 (AVX512-BF16/AMX), faster, results differ slightly")
    h = p.add_argument_group("large images")
    h.add_argument("--strategy", choices=STRATEGIES,
                   help="how large images reach the model (default: the model's own)")
    h.add_argument("--resize-limit", type=_positive_int, metavar="N",
                   help="longest side the model sees with 'resize' (and for big crop windows)")
    h.add_argument("--crop-margin", type=_positive_int, metavar="N",
                   help="context pixels around each hole with 'crop'")
    h.add_argument("--crop-trigger", type=_positive_int, metavar="N",
                   help="'crop' only crops images whose longest side exceeds N")
    m = p.add_argument_group("mask and seams")
    m.add_argument("--resize-mask", action="store_true",
                   help="scale a mask of a different size to the image (nearest neighbour)")
    m.add_argument("--mask-alpha", action="store_true",
                   help="the mask's transparent pixels are the hole (instead of white ones)")
    m.add_argument("--grow", type=_positive_int, default=0, metavar="PX",
                   help="grow the mask by PX pixels before filling")
    m.add_argument("--blend", choices=BLEND_MODES, default="none",
                   help="seam treatment inside the hole (default: none)")
    m.add_argument("--blend-radius", type=_positive_int, default=8, metavar="PX",
                   help="width of the feather / colour-matching band (default: 8)")
    o = p.add_argument_group("output")
    o.add_argument("--overwrite", action="store_true", help="replace existing output files")
    o.add_argument("--quality", type=_quality, default=95, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default: 95; WebP 100 = lossless)")
    o.add_argument("-q", "--quiet", action="store_true", help="only print errors and warnings")


def _add_models_commands(sub) -> None:
    """``inpaint models [list|import|remove|verify|convert-srn]``."""
    models = sub.add_parser("models", help="list models and their weights",
                            description="List every model with the state of its weights, and "
                                        "where each official checkpoint comes from.")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    mlist = msub.add_parser("list", help="the same as 'inpaint models'",
                            description="List every model with the state of its weights, and "
                                        "where each official checkpoint comes from.")
    mlist.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output")
    imp = msub.add_parser("import", help="check a downloaded weight file and install it",
                          description="Check a weight file (read without running code from "
                                      "it, loaded into the network, sha256 compared where "
                                      "published) and copy it into the user model folder "
                                      "under the name the app expects.")
    imp.add_argument("file", metavar="FILE", help="the downloaded checkpoint (for SRN: the "
                     "TensorFlow checkpoint's .index file, converted on import)")
    imp.add_argument("--model", metavar="NAME", help="the model it belongs to (default: "
                     "detected from the file)")
    imp.add_argument("--set", dest="weight_set", metavar="MODEL:SET",
                     help="the official weight set it is, e.g. aot:places2 (see 'inpaint "
                          "models'); with --model its name alone is enough")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace a different file already installed under that name")
    rem = msub.add_parser("remove", help="remove an imported weight file",
                          description="Delete a weight file from the user model folder "
                                      "(bundled files cannot be removed).")
    rem.add_argument("ref", metavar="MODEL:SET|FILE",
                     help="the weight set's tag (e.g. aot:mine) or the file")
    ver = msub.add_parser("verify", help="check installed weight files",
                          description="Compare the sha256 of installed weight files with the "
                                      "published one and check that each file is whole. Exit "
                                      "status 1 when a file is broken or does not match.")
    ver.add_argument("refs", nargs="*", metavar="MODEL:SET|FILE",
                     help="what to check (default: every installed file)")
    conv = msub.add_parser("convert-srn", help="convert the official SRN TensorFlow checkpoint",
                           description="Convert an official SRN TensorFlow checkpoint "
                                       "(e.g. .../snap-80000) to a PyTorch .pt file.")
    conv.add_argument("prefix", metavar="CKPT_PREFIX",
                      help="checkpoint prefix (snap-80000), its .index file or its folder")
    conv.add_argument("-o", "--output", required=True, metavar="OUT.pt")
    conv.add_argument("--overwrite", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Offline image inpainting from the command line.",
        epilog="Run 'inpaint COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="fill the masked part of one image",
                         description="Fill the masked part of IMAGE and write OUT.")
    run.add_argument("image", metavar="IMAGE", help="input image (PNG, JPEG, WebP, TIFF, BMP)")
    run.add_argument("mask", metavar="MASK", help="mask image: white (or any bright) = fill")
    run.add_argument("-o", "--output", required=True, metavar="OUT",
                     help="output file; its extension picks the format")
    _add_model_options(run)

    batch = sub.add_parser("batch", help="fill many images",
                           description="Fill every image in a folder. Masks are matched by "
                                       "file name stem (photo.jpg <- photo.png or "
                                       "photo_mask.png), or one mask file is used for all.")
    batch.add_argument("--images", required=True, metavar="DIR", help="folder of input images")
    batch.add_argument("--masks", required=True, metavar="DIR_OR_FILE",
                       help="folder of masks (matched by stem) or one mask for every image")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    batch.add_argument("--ext", metavar="EXT",
                       help="output format extension, e.g. png (default: same as the input)")
    batch.add_argument("--suffix", default="", metavar="TEXT",
                       help="appended to each output file's stem (e.g. _filled)")
    batch.add_argument("--skip-existing", action="store_true",
                       help="leave images whose output file already exists (resume an "
                            "interrupted batch); they are counted as skipped, not as errors")
    _add_model_options(batch)

    _add_models_commands(sub)

    for name, (_mod, _func, what) in PASSTHROUGH.items():
        p = sub.add_parser(name, help=what, add_help=False,
                           description=f"{what} (options: 'inpaint {name} --help')")
        p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


# ============================================================================ main

def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit status (never calls ``sys.exit`` itself)."""
    from .engine.memory import request_torch_huge_pages
    request_torch_huge_pages()  # before anything imports torch
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("INPAINT_DEBUG"))
    if argv and argv[0] in PASSTHROUGH:  # their own parsers own every option after the name
        return _guarded(lambda: _passthrough(argv[0], argv[1:]), debug)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    debug = debug or args.debug
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handlers = {"run": cmd_run, "batch": cmd_batch, "models": cmd_models}
    if args.command in PASSTHROUGH:
        return _guarded(lambda: _passthrough(args.command, args.rest), debug)
    return _guarded(lambda: handlers[args.command](args), debug)


def _guarded(fn, debug: bool = False) -> int:
    """Turn the errors users can cause into one line and an exit status."""
    from .engine.imageio import ImageIOError
    from .engine.progress import Cancelled
    from .engine.registry import ModelUnavailableError, UnknownModelError
    from .engine.weights import WeightsError

    try:
        rc = fn()
        return int(rc or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Cancelled:
        _err("cancelled")
        return 130
    except SystemExit as exc:  # a passthrough tool's own argparse
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (CliError, ImageIOError, WeightsError, UnknownModelError, ModelUnavailableError,
            FileExistsError) as exc:
        if debug:
            raise
        _err(_one_line(exc))
        return 1
    except Exception as exc:  # anything else is still reported as one line
        if debug:
            raise
        _err(f"{type(exc).__name__}: {_one_line(exc)} (set INPAINT_DEBUG=1 for a traceback)")
        return 1


def _passthrough(name: str, rest: Sequence[str]) -> int:
    mod_name, func_name, _what = PASSTHROUGH[name]
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and mod_name.startswith(exc.name):
            raise CliError(f"'{name}' is not available in this installation "
                           f"({mod_name} is missing)") from None
        raise
    rc = getattr(mod, func_name)(list(rest))
    return rc if isinstance(rc, int) else 0


# ============================================================================ model checks

def _model_names() -> "list[str]":
    from .engine.registry import list_models
    return [s.name for s in list_models()]


def check_model(name: str, weights: Optional[str]):
    """Validate ``--model``/``--weights`` before any work: returns the spec (None for auto).

    Raises CliError for an unknown model, a missing --weights file or missing weights."""
    from .engine.registry import UnknownModelError
    from .engine.service import check_model as engine_check
    from .engine.weights import MissingWeightsError, WeightsError

    if name.lower() == "auto" and weights:
        raise CliError("--weights needs a specific --model (not auto)")
    try:
        spec = engine_check(name, weights)
    except UnknownModelError:
        raise CliError(f"unknown model {name!r}; available: auto, "
                       + ", ".join(_model_names())) from None
    except WeightsError as exc:
        hint = " (or pass --weights FILE)" if isinstance(exc, MissingWeightsError) and not weights else ""
        raise CliError(f"{exc}{hint}") from None
    if weights and spec is not None and not spec.needs_weights:
        _warn(f"{spec.name} needs no weights; --weights is ignored")
    return spec


def _request(args, image, mask):
    """The run service's request for one image: the options of ``args``."""
    from .engine.pipeline import HDStrategy
    from .engine.service import RunRequest

    overrides = {k: v for k, v in (("resize_limit", args.resize_limit),
                                   ("crop_margin", args.crop_margin),
                                   ("crop_trigger", args.crop_trigger)) if v is not None}
    try:  # without --strategy the model's own strategy runs, with these limits
        strategy = replace(HDStrategy(args.strategy or "crop"), **overrides)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    blend = None
    if args.blend != "none":
        from .engine.blending import BlendSettings
        blend = BlendSettings(mode=args.blend, radius=args.blend_radius)
    return RunRequest(image, mask, model=args.model, weights=args.weights, strategy=strategy,
                      model_strategy=args.strategy is None, blend=blend, device=args.device,
                      precision=args.precision, model_options=_parsed_options(args))


def model_options(args, spec) -> dict:
    """``--option KEY=VALUE`` pairs as loader options (values parsed as JSON when they can be).

    Options a model declares (``spec.user_options``) are checked against their range here."""
    opts = _parsed_options(args)
    if spec is None:
        if opts:
            raise CliError("--option needs a specific --model (not auto)")
        return opts
    declared = {o.key: o for o in spec.user_options}
    for key, value in opts.items():
        o = declared.get(key)
        if o is None:
            continue  # other loader options (e.g. a variant's) are the loader's business
        if isinstance(value, bool) or not isinstance(value, int) or not o.minimum <= value <= o.maximum:
            raise CliError(f"--option {key}: {spec.title} takes a whole number from {o.minimum} "
                           f"to {o.maximum}, got {value!r}")
    return opts


def _parsed_options(args) -> dict:
    opts = {}
    for item in getattr(args, "option", None) or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        opts[key] = value
    return opts


def _check_device(args) -> None:
    if args.device in ("auto", "cpu"):
        return
    from .engine import devices
    if args.device not in devices.available_devices():
        _warn(f"device {args.device} is not available here; running on the CPU")


# ============================================================================ one image

def _output_exists_error(path: Path, batch: bool = False) -> CliError:
    if batch:
        return CliError(f"{path} already exists (use --skip-existing to resume a batch, or "
                        "--overwrite to replace it)")
    return CliError(f"{path} already exists (use --overwrite to replace it)")


def check_writable_dir(folder: Path) -> None:
    """Fail now, before any model runs, when files cannot be created in ``folder``."""
    import tempfile
    if not folder.is_dir():
        raise CliError(f"the output folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".inpaint-write-test-"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write into the output folder {folder}: "
                       f"{exc.strerror or _one_line(exc)}") from None


def _warn_once(args, key, text: str, say=None) -> None:
    """A warning printed once per command (a batch repeats the same cause per image)."""
    seen = args.__dict__.setdefault("_warned", set())
    if key not in seen:
        seen.add(key)
        (say or _warn)(text)


def _load_mask(args, mask_path: Path, shape, say=None):
    from .engine import imageio, maskops
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", imageio.ImageIOWarning)
            mask = imageio.load_mask(mask_path, shape=shape, use_alpha=args.mask_alpha,
                                     resize=args.resize_mask)
    except imageio.MaskSizeError as exc:
        raise CliError(f"{exc}; use --resize-mask to scale the mask to the image") from None
    for w in caught:
        if issubclass(w.category, imageio.ImageIOWarning):
            _warn_once(args, ("mask", str(mask_path), str(w.message)), str(w.message), say)
    if args.grow:
        mask = maskops.grow(mask, args.grow)
    if mask.size and mask.all():
        _warn_once(args, ("all", str(mask_path)),
                   f"{mask_path.name} covers the whole image: nothing is kept to fill from, so "
                   "the result is made up (is the mask inverted? white marks what to fill)", say)
    return mask


def process_one(args, image_path: Path, mask_path: Path, out_path: Path, spec,
                on_progress=None, notice=None) -> str:
    """Fill one image and write it; returns a short description of what was done.
    ``notice(text)``: one-line notices (a broken weight file skipped; default: a warning).

    Memory: the photo, the mask and the result are the only full-size arrays alive at once
    (the photo and mask are dropped before the result is encoded)."""
    from .engine import imageio

    imageio.format_for_path(out_path)  # unsupported output extension: fail before any work
    if out_path.exists() and not args.overwrite:
        raise _output_exists_error(out_path)
    say = (lambda text: notice(text)) if notice else None
    doc = imageio.load_image(image_path)
    mask = _load_mask(args, mask_path, doc.rgb.shape, say)

    if not mask.any():
        same_format = imageio.format_for_path(out_path) == doc.format
        if same_format:
            data = Path(image_path).read_bytes()
            _write(lambda: imageio.write_bytes_atomic(out_path, data, overwrite=args.overwrite),
                   out_path)
            return "empty mask: copied unchanged"
        result = doc.rgb
        how = "empty mask: written unchanged"
    else:
        from .engine.pipeline import unmasked_equal
        from .engine.service import default_service
        service = default_service()
        plan = service.prepare(_request(args, doc.rgb, mask))
        if plan.reason:
            _info(args, f"auto model: {plan.model}: {plan.reason}")
        ran = service.execute(plan, progress=on_progress, notice=notice or _warn)
        result = ran.image
        how = f"{plan.model}, {ran.seconds:.1f} s"
        if not unmasked_equal(result, doc.rgb, mask):  # pragma: no cover
            raise CliError("internal error: pixels outside the mask changed; nothing written")
    alpha, exif, icc = doc.alpha, doc.exif, doc.icc
    del doc, mask  # only the result is needed from here on
    note = imageio.lossy_note(out_path, args.quality)
    if note:
        _warn_once(args, ("lossy", imageio.format_for_path(out_path)), note, say)
    _write(lambda: imageio.save_image(out_path, result, alpha=alpha, exif=exif, icc=icc,
                                      overwrite=args.overwrite, quality=args.quality), out_path)
    return how


def _write(fn, out_path: Path) -> None:
    """Run a save; FileExistsError becomes the --overwrite hint, ImageIOWarnings are printed."""
    from .engine.imageio import ImageIOWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageIOWarning)
        try:
            fn()
        except FileExistsError:
            raise _output_exists_error(out_path) from None
    for w in caught:
        if issubclass(w.category, ImageIOWarning):
            _warn(str(w.message))
        else:  # pragma: no cover
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def cmd_run(args) -> int:
    image, mask, out = Path(args.image), Path(args.mask), Path(args.output)
    from .engine import imageio
    imageio.format_for_path(out)
    if out.exists() and not args.overwrite:
        raise _output_exists_error(out)
    check_writable_dir(out.parent)  # before any model runs
    spec = check_model(args.model, args.weights)
    model_options(args, spec)
    _check_device(args)
    progress = _stage_printer(args)
    how = process_one(args, image, mask, out, spec, on_progress=progress)
    _end_stage_line(args)
    _info(args, f"wrote {out} ({how})")
    return 0


def _stage_printer(args):
    """Progress callback for run: the current stage, redrawn in place on a terminal."""
    if args.quiet or not sys.stderr.isatty():
        return None

    def show(ev) -> None:
        pct = f" {int(ev.fraction * 100):3d}%" if ev.total > 1 else ""
        sys.stderr.write(f"\r\x1b[K{PROG}: {ev.stage}{pct} ({ev.elapsed:.1f} s)")
        sys.stderr.flush()
    return show


def _end_stage_line(args) -> None:
    if not args.quiet and sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


# ============================================================================ batch

def _list_images(folder: Path) -> "list[Path]":
    from .engine.imageio import SUPPORTED_EXTENSIONS
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in SUPPORTED_EXTENSIONS)


def _is_mask_name(p: Path) -> bool:
    return any(p.stem.endswith(s) for s in MASK_SUFFIXES if s)


def _find_mask(masks: "dict[str, Path]", image: Path) -> Optional[Path]:
    for suffix in MASK_SUFFIXES:
        hit = masks.get(image.stem + suffix)
        if hit is not None and hit != image:
            return hit
    return None


def cmd_batch(args) -> int:
    from .engine import imageio

    images_dir, masks_arg, out_dir = Path(args.images), Path(args.masks), Path(args.out)
    if not images_dir.is_dir():
        raise CliError(f"image folder not found: {images_dir}")
    if not masks_arg.exists():
        raise CliError(f"mask folder or file not found: {masks_arg}")
    if args.skip_existing and args.overwrite:
        raise CliError("--skip-existing and --overwrite contradict each other; pick one")
    ext = None
    if args.ext:
        ext = "." + args.ext.lower().lstrip(".")
        if ext not in imageio.SUPPORTED_EXTENSIONS:
            raise CliError(f"unsupported output format {args.ext!r}; "
                           "use png, jpg, webp, tif or bmp")
    spec = check_model(args.model, args.weights)
    model_options(args, spec)
    _check_device(args)

    images = _list_images(images_dir)
    single_mask = masks_arg if masks_arg.is_file() else None
    mask_index: "dict[str, Path]" = {}
    if single_mask is None:
        for p in _list_images(masks_arg):
            mask_index.setdefault(p.stem, p)
        if masks_arg.resolve() == images_dir.resolve():  # masks live beside the images
            images = [p for p in images if not (_is_mask_name(p) and p in mask_index.values())]
    if not images:
        raise CliError(f"no images (.png, .jpg, .webp, .tif, .bmp) in {images_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {out_dir}: "
                       f"{exc.strerror or _one_line(exc)}") from None
    check_writable_dir(out_dir)  # before any model runs

    bar = _Bar(len(images), enabled=not args.quiet)
    failed: "list[tuple[Path, str]]" = []
    done_names: "set[str]" = set()
    ok = skipped = 0
    stopped = None
    for i, image in enumerate(images):
        bar.update(i, image.name)
        out_name = image.stem + args.suffix + (ext or image.suffix)
        out_path = out_dir / out_name
        try:
            if out_name in done_names:
                raise CliError(f"two inputs would both be written to {out_path}")
            done_names.add(out_name)
            if out_path.exists() and not args.overwrite:
                if args.skip_existing:
                    skipped += 1
                    bar.step(i + 1, f"{image.name}: skipped, {out_path} exists")
                    continue
                raise _output_exists_error(out_path, batch=True)
            mask = single_mask or _find_mask(mask_index, image)
            if mask is None:
                raise CliError(f"no mask for {image.name} in {masks_arg} "
                               f"(expected {image.stem}.png or {image.stem}_mask.png)")
            how = process_one(args, image, mask, out_path, spec,
                              notice=lambda text: bar.message(f"{PROG}: warning: {text}"))
            ok += 1
            bar.step(i + 1, f"{image.name} -> {out_path} ({how})")
        except KeyboardInterrupt:
            bar.close()
            raise
        except Exception as exc:
            from .engine.imageio import ImageIOError
            from .engine.weights import WeightsError
            known = (CliError, ImageIOError, WeightsError, FileExistsError, ValueError)
            text = _one_line(exc) if isinstance(exc, known) else \
                f"{type(exc).__name__}: {_one_line(exc)}"
            failed.append((image, text))
            bar.message(f"{PROG}: error: {image.name}: {text}")
            bar.step(i + 1, f"{image.name} failed")
            if isinstance(exc, WeightsError):  # the same for every image: stop now
                stopped = len(images) - i - 1
                break
    bar.update(ok + skipped + len(failed), "")
    bar.close()
    skip_text = f", {skipped} skipped (output already there)" if skipped else ""
    if failed:
        names = ", ".join(p.name for p, _ in failed[:5]) + (" ..." if len(failed) > 5 else "")
        tail = f"; stopped, {stopped} not attempted" if stopped else ""
        print(f"{PROG}: {ok} of {len(images)} images done{skip_text}; {len(failed)} failed: "
              f"{names}{tail}", file=sys.stderr)
        return 1
    _info(args, f"{ok} of {len(images)} images done{skip_text}, written to {out_dir}")
    return 0


# ============================================================================ models

def cmd_models(args) -> int:
    if args.models_command == "convert-srn":
        return cmd_convert_srn(args)
    if args.models_command == "import":
        return cmd_import_weights(args)
    if args.models_command == "remove":
        return cmd_remove_weights(args)
    if args.models_command == "verify":
        return cmd_verify_weights(args)
    from .engine.registry import list_models, unavailable_reason
    from .engine.weight_store import official_weights
    from .engine.weights import user_models_dir, weight_files, weight_status, weight_tag

    rows = []
    for spec in list_models():
        status, ws, path = weight_status(spec)
        broken = [{"file": f.path.name, "path": str(f.path), "weights": f.ws.name,
                   "problem": f.problem} for f in weight_files(spec) if not f.usable]
        rows.append({
            "name": spec.name, "title": spec.title, "task": spec.task, "status": status,
            "unavailable_reason": unavailable_reason(spec) if status == "unavailable" else None,
            "weights": ws.name if ws is not None and status != "broken" else None,
            "tag": weight_tag(spec, ws) if ws is not None and status != "broken" else None,
            "path": str(path) if path is not None and status != "broken" else None,
            "broken": broken,
            "expected": [w.filename for w in spec.weight_sets],
            "native_size": spec.native_size, "default_strategy": spec.default_strategy,
        })
    official = official_weights()
    if args.json:
        print(json.dumps({"user_models_dir": str(user_models_dir()), "models": rows,
                          "official": [o.to_dict() for o in official]}, indent=2))
        return 0
    name_w = max([4] + [len(r["name"]) for r in rows])
    title_w = max([5] + [len(r["title"]) for r in rows])
    print(f"{'NAME':<{name_w}}  {'TITLE':<{title_w}}  {'TASK':<8}  WEIGHTS")
    pad = " " * (name_w + title_w + 14)
    for r in rows:
        if r["status"] == "missing":
            state = "missing: put " + (" or ".join(r["expected"]) or f"{r['name']}.pt") \
                + " into the user model folder"
        elif r["status"] == "none needed":
            state = "none needed"
        elif r["status"] == "broken":
            state = "broken: no usable weight file"
        elif r["status"] == "unavailable":
            state = f"unavailable: {r['unavailable_reason']}"
        else:
            state = f"{r['status']} ({r['weights']}: {r['path']})"
        print(f"{r['name']:<{name_w}}  {r['title']:<{title_w}}  {r['task']:<8}  {state}")
        for b in r["broken"]:
            print(f"{pad}broken: {b['path']}: {b['problem']}")
    print(f"\nuser model folder: {user_models_dir()} (set INPAINT_GUI_MODELS to change it)")
    _print_official(official)
    return 0


def _print_official(official) -> None:
    """Where each official checkpoint comes from (the same list as the app's Get official
    weights dialog)."""
    if not official:
        return
    print("\nOfficial weights: this program never downloads anything. Download a file with a "
          "browser, then\n  inpaint models import FILE --set MODEL:SET\n"
          "(or Models > Get official weights... in the app) checks it and installs it under the "
          "expected name.")
    for o in official:
        ws = o.weight_set
        state = "not installed"
        if o.installed:
            from .engine.weights import check_weight_file, tolerant_reader
            problem = check_weight_file(o.installed, ws, tolerant_reader(o.spec))
            state = f"installed: {o.installed}" + (f"; broken: {problem}" if problem else "")
        print(f"\n{o.tag}  ({ws.training_data})  [{state}]")
        names = ws.filename + (f" (also accepted: {', '.join(o.also_accepted)})"
                               if o.also_accepted else "")
        print(f"  expected file: {names}")
        print(f"  source:        {'  '.join(o.urls) if o.urls else ws.source}")
        print(f"  size:          {o.size};  sha256: {o.sha256}")
        if o.needs_conversion:
            print("  note:          a TensorFlow checkpoint: import its .index file (converted)")
        if o.card:
            print(f"  model card:    {o.card}")


def cmd_import_weights(args) -> int:
    from .engine import weight_store as S
    from .engine.weights import TAG_SEP
    model, weight_set = args.model, args.weight_set
    if weight_set and TAG_SEP in weight_set:
        tag_model, _sep, weight_set = weight_set.partition(TAG_SEP)
        if model and model.lower() != tag_model.lower():
            raise CliError(f"--set {args.weight_set} is a weight set of {tag_model}, not of {model}")
        model = tag_model
    if weight_set and not model:
        raise CliError("--set needs the model: MODEL:SET (see 'inpaint models')")
    try:
        if weight_set:
            check = S.inspect_for_weight_set(args.file, model, weight_set)
        else:
            check = S.inspect_weight_file(args.file, model)
    except S.ImportWeightsError as exc:
        raise CliError(f"not imported: {_one_line(exc)}") from None
    try:
        installed = S.install_unless_kept(check, lambda _c: args.overwrite)
    except S.ImportWeightsError as exc:
        raise CliError(f"not imported: {_one_line(exc)}") from None
    if installed is None:
        raise CliError(f"not imported: {check.target} exists and is a different file; pass "
                       "--overwrite to replace it")
    check = installed
    print(f"{PROG}: installed {check.target}: {check.message}", file=sys.stderr)
    return 0


def cmd_remove_weights(args) -> int:
    from .engine import weight_store as S
    try:
        path = S.remove_weight_file(args.ref)
    except (S.ImportWeightsError, OSError) as exc:
        raise CliError(f"not removed: {_one_line(exc)}") from None
    print(f"{PROG}: removed {path}", file=sys.stderr)
    return 0


def cmd_verify_weights(args) -> int:
    from .engine import weight_store as S
    try:
        checks = S.verify(args.refs or None)
    except S.ImportWeightsError as exc:
        raise CliError(_one_line(exc)) from None
    for c in checks:
        print(c.message)
    if not checks:
        from .engine.weights import user_models_dir
        print(f"no weight files installed (user model folder: {user_models_dir()})")
    return 0 if all(c.ok for c in checks) else 1


def cmd_convert_srn(args) -> int:
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise _output_exists_error(out)
    from .engine.nets.srn import convert_srn_checkpoint
    from .engine.tfckpt import TFCheckpointError
    from .engine.weights import WeightsError
    known = (OSError, ValueError, KeyError, WeightsError, TFCheckpointError)
    try:
        summary = convert_srn_checkpoint(args.prefix, out, overwrite=args.overwrite)
    except FileExistsError:
        raise _output_exists_error(out) from None
    except known as exc:
        raise CliError(f"cannot convert {args.prefix}: {_one_line(exc)}") from None
    tensors = summary.get("tensors") if isinstance(summary, dict) else None
    print(f"{PROG}: wrote {out}" + (f" ({tensors} tensors)" if tensors else ""), file=sys.stderr)
    _warn_if_not_found(out, "srn")
    return 0


def _warn_if_not_found(out: Path, model: str) -> None:
    """Say so when the app will not find ``out`` by itself: a file name no weight set of
    ``model`` looks for, or a folder it does not search."""
    from .engine.registry import get_spec
    from .engine.weights import search_dirs, user_models_dir
    spec = get_spec(model)
    names = [ws.filename for ws in spec.weight_sets if ws.kind == "official"]
    where = {d.resolve() for d in search_dirs()}
    if out.name not in names:
        _warn(f"the app looks for {' or '.join(names)}; {out.name} is only used with "
              f"--weights {out} (rename it to {names[0]} in {user_models_dir()} to use it "
              "by default)")
    elif out.resolve().parent not in where:
        _warn(f"{out.parent} is not a folder the app searches; move {out.name} into "
              f"{user_models_dir()} (or set INPAINT_GUI_MODELS) to use it by default")


if __name__ == "__main__":
    sys.exit(main())
