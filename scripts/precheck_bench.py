"""The time the person check adds to a request (``TRYON["PERSON_CHECK"]``): median and p95.

Runs ``django_tryon.precheck.run`` (decode, the copy of at most 1024 px, ``check_person``) as the app does
when a photo comes in, on the person photos of ``--images``/person (default ``<repo>/../shared/images``),
or on drawn figures (``tests/images.py``) when that folder is absent. Each photo is measured at 1024 px on
its long side (the target: median ≤ 150 ms) and at its own size; ``check_person`` on the full-size photo is
shown too, for what the reduced copy saves. The first call (the detectors' load) is reported apart and left
out of the figures. Smaller copies save nothing (the detectors' fixed-size models dominate) and change
verdicts; the engine itself analyses at most 1024 px. No database.
Usage: ``python scripts/precheck_bench.py [--images DIR] [--rounds N] [--one-core]``.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_MS = 150.0
SIDE = 1024


def photos(folder: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """(source, [(name, original bytes)]): the shared person photos, else drawn figures."""
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        if found:
            return str(folder), [(p.name, p.read_bytes()) for p in found]
    from tests import images

    sizes = ((480, 800), (768, 1280), (1260, 2100), (1800, 3000), (1000, 800))
    return "drawn figures (tests/images.py)", [
        (f"drawn_{w}x{h}", images.standing_person(w, h)) for w, h in sizes
    ]


def at_side(data: bytes, side: int) -> bytes:
    """The photo as a JPEG with its long side ``side`` px (what a phone app or a resizing shop sends)."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = (ImageOps.exif_transpose(image) or image).convert("RGB")
    scale = side / max(rgb.size)
    rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("TRYON_SHARED_IMAGES", ROOT.parent / "shared" / "images"))
    parser.add_argument("--images", type=Path, default=shared, help=f"default {shared}")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the photos (default 5)")
    parser.add_argument("--one-core", action="store_true", help="pin the process to one CPU (Linux)")
    args = parser.parse_args()

    if args.one_core:  # what a web worker gets on a busy machine (the detectors use more threads otherwise)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from django.conf import settings

    settings.configure(TRYON={"PERSON_CHECK": "warn"}, USE_I18N=False)
    from django_tryon import precheck

    try:
        import_ms, _ = timed(lambda: __import__("django_tryon.engine"))
        from django_tryon.engine import check_person
        from django_tryon.engine.images import to_rgb_array
    except ImportError as err:
        raise SystemExit(f"the engine extra is not installed: {err}") from err

    source, originals = photos(args.images / "person")
    scaled = [(name, at_side(data, SIDE)) for name, data in originals]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"person check: {len(originals)} photos from {source}, {args.rounds} rounds, {cores} CPU(s)")

    load_ms, first = timed(partial(precheck.run, scaled[0][1]))
    warm_ms, _ = timed(partial(precheck.run, scaled[0][1]))
    print(
        f"once per process: importing the engine {import_ms:.0f} ms; the first check {load_ms:.0f} ms "
        f"(the detectors' load: about {load_ms - warm_ms:.0f} ms), left out below"
    )

    figures: dict[str, list[float]] = {"at_1024": [], "own_size": [], "own_size_unscaled": []}
    verdicts: dict[str, str] = {}
    arrays = {name: to_rgb_array(data) for name, data in originals}
    for _ in range(args.rounds):
        for (name, small), (_, data) in zip(scaled, originals, strict=True):
            ms, verdict = timed(partial(precheck.run, small))
            figures["at_1024"].append(ms)
            verdicts[name] = (verdict or {}).get("verdict", "no verdict")
            figures["own_size"].append(timed(partial(precheck.run, data))[0])
            figures["own_size_unscaled"].append(timed(partial(check_person, arrays[name]))[0])

    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in originals}
    for name, verdict in verdicts.items():
        print(f"  {name[:60]:60} {sizes[name][0]}x{sizes[name][1]}  {verdict}")
    results = {key: summary(values) for key, values in figures.items()}
    labels = {
        "at_1024": f"at {SIDE} px (precheck.run)",
        "own_size": "at the photo's own size (precheck.run)",
        "own_size_unscaled": "check_person on the full-size photo (no reduced copy)",
    }
    for key, figure in results.items():
        print(
            f"{labels[key]:56} median {figure['median_ms']:6.1f} ms  p95 {figure['p95_ms']:6.1f} ms  "
            f"max {figure['max_ms']:6.1f} ms"
        )
    met = results["at_1024"]["median_ms"] <= TARGET_MS
    print(f"target: median ≤ {TARGET_MS:.0f} ms at {SIDE} px: {'met' if met else 'NOT met'}")
    print(
        json.dumps(
            {
                "source": source,
                "photos": len(originals),
                "rounds": args.rounds,
                "cpus": cores,
                "engine_import_ms": round(import_ms, 1),
                "first_call_ms": round(load_ms, 1),
                "first_result": (first or {}).get("verdict"),
                **results,
                "target_met": met,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
