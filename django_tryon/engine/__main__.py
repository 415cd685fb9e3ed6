"""Command line for the offline try-on engine (no Django needed): ``tryon-engine``, or
``python -m django_tryon.engine``.

    tryon-engine render --person P [--top T] [--bottom B] [--resolution {-1,1024,1280}]
                        [--no-restore-face] [--top-kind {top,one_piece}] --out O
    tryon-engine check-person P
    tryon-engine analyze-garment G [--kind {top,bottom,one_piece}]

Every command prints one JSON object on stdout. Exit codes: 0 success (``check-person``: the photo is
usable), 1 ``check-person`` refused the photo, 2 an error (``{"error": code, "message": ...}``).
"""

from __future__ import annotations

import os

# Before anything imports mediapipe (a fresh interpreter calling main()); the models' own start-up
# lines are written by C++ code straight to file descriptor 2: see silence_native_logs().
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

from PIL import Image, UnidentifiedImageError

from ..console import prog_name
from .plain import jsonable

warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")

JPEG_QUALITY = 92


def _print(payload: dict[str, Any]) -> None:
    print(json.dumps(jsonable(payload), ensure_ascii=False), flush=True)


def _fail(code: str, message: str) -> NoReturn:
    _print({"error": code, "message": message})
    sys.exit(2)


def _load(path: str, what: str) -> Image.Image:
    """Open and fully decode an image file, or exit 2 with a clear message."""
    file = Path(path)
    if not file.is_file():
        _fail("InvalidFile", f"{what} file not found: {path}")
    try:
        image = Image.open(file)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as err:
        _fail("InvalidFile", f"{what} file {path} is not a readable image: {err}")
    return image


def cmd_render(args: argparse.Namespace) -> int:
    from . import RenderError, render_tryon

    if args.top is None and args.bottom is None:
        _fail("InvalidGarment", "Give --top (a top or a one-piece) and/or --bottom.")
    out = Path(args.out)
    if not out.parent.is_dir():
        _fail("InvalidFile", f"output folder does not exist: {out.parent}")
    if out.suffix.lower() not in Image.registered_extensions():
        _fail("InvalidParameter", f"unknown output image format for {out.name}: use .jpg, .png or .webp")
    person = _load(args.person, "person")
    top = _load(args.top, "top") if args.top else None
    bottom = _load(args.bottom, "bottom") if args.bottom else None
    start = time.perf_counter()
    try:
        result = render_tryon(
            person,
            top,
            bottom,
            resolution=args.resolution,
            restore_face=args.restore_face,
            top_kind=args.top_kind,
        )
    except RenderError as err:
        _fail(err.code, str(err))
    seconds = time.perf_counter() - start
    fmt = Image.registered_extensions()[out.suffix.lower()]
    options: dict[str, Any] = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    try:
        result.save(out, format=fmt, **options)
    except (OSError, ValueError) as err:
        _fail("InvalidFile", f"cannot write {out}: {err}")
    _print({"out": str(out), "width": result.width, "height": result.height, "seconds": round(seconds, 3)})
    return 0


def cmd_check_person(args: argparse.Namespace) -> int:
    from . import check_person

    check = check_person(_load(args.image, "person"))
    _print(check.as_dict())
    return 0 if check.ok else 1


def cmd_analyze_garment(args: argparse.Namespace) -> int:
    from . import analyze_garment

    try:
        analysis = analyze_garment(_load(args.image, "garment"), kind=args.kind)
    except ValueError as err:
        _fail("InvalidGarment", str(err))
    _print(
        {
            "kind": analysis.kind,
            "pieces": analysis.pieces,
            "background_clean": analysis.background_clean,
            "fill_ratio": round(float(analysis.fill_ratio), 4),
            "problems": analysis.problems,
            "keypoints": {
                name: [round(float(x), 1), round(float(y), 1)] for name, (x, y) in analysis.keypoints.items()
            },
        }
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog_name("django_tryon.engine"), description="Offline, preview-quality virtual try-on."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="dress a person photo in a top and/or a bottom")
    render.add_argument("--person", required=True, help="full-body, front-facing photo of one person")
    render.add_argument("--top", help="flat-lay top, or a one-piece (dress)")
    render.add_argument("--bottom", help="flat-lay bottom (trousers, shorts, skirt)")
    render.add_argument(
        "--resolution",
        type=int,
        choices=(-1, 1024, 1280),
        default=-1,
        help="-1 keeps the photo's size; 1024 → 576x1024; 1280 → 720x1280",
    )
    render.add_argument(
        "--no-restore-face",
        dest="restore_face",
        action="store_false",
        help="do not protect detected faces (the engine never generates a new face)",
    )
    render.add_argument(
        "--top-kind", choices=("top", "one_piece"), help="what --top is (guessed when omitted)"
    )
    render.add_argument("--out", required=True, help="output image; the format follows the extension")
    render.set_defaults(handler=cmd_render)

    check = commands.add_parser("check-person", help="is this a usable person photo? (exit 0 yes, 1 no)")
    check.add_argument("image")
    check.set_defaults(handler=cmd_check_person)

    garment = commands.add_parser("analyze-garment", help="cut out a garment and describe it")
    garment.add_argument("image")
    garment.add_argument("--kind", choices=("top", "bottom", "one_piece"), help="guessed when omitted")
    garment.set_defaults(handler=cmd_analyze_garment)
    return parser


def silence_native_logs() -> None:
    """Send what mediapipe's C++ code (TensorFlow Lite, absl) writes to file descriptor 2 to /dev/null.

    Those lines bypass Python's ``sys.stderr``; Python's own messages (argparse usage, tracebacks) go
    to the original stderr, which ``sys.stderr`` keeps through a duplicate of the descriptor.
    """
    sys.stderr.flush()
    original = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(
        original, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command (the ``tryon-engine`` console script); returns the exit code."""
    args = build_parser().parse_args(argv)
    silence_native_logs()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
