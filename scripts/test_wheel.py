"""The package as users install it: build the sdist and the wheel, check them, install the wheel (not
editable) in a fresh venv and run a named subset of the suite against it (``make wheel-test``).

1. A fresh venv (``--work-dir``, default a temporary folder) with the ``wheel-test`` dependency group.
2. ``python -m build``: the sdist from the checkout, then the wheel from the sdist (so a file the sdist
   forgets breaks the wheel too); ``twine check --strict``.
3. Contents: the wheel holds every tracked file of ``django_tryon/`` (templates, static files, migrations,
   ``.po`` and compiled ``.mo`` catalogs, ``py.typed``) and nothing else; the sdist holds the package, the
   docs, the tests, the example shop and the scripts; neither holds caches, builds or the demo's ``var/``.
4. ``pip install "django_tryon-….whl[redis,engine,sandbox]"``, then ``SUBSET`` with pytest from a folder
   holding only copies of ``tests/``, ``docs/`` and ``pyproject.toml``: ``import django_tryon`` can only
   find the installed copy, and ``tests/test_installed.py`` asserts it (``DJANGO_TRYON_TEST_INSTALLED=1``).

Needs the package index (pip). Usage: ``python scripts/test_wheel.py [--work-dir DIR] [--keep]``.
The last line is one JSON object: the seconds of each step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = "redis,engine,sandbox"
#: What runs against the installed wheel, and what each part proves is in it.
SUBSET = {
    "tests/test_installed.py": "the import is the wheel's; package data, collectstatic, console scripts",
    "tests/test_migrations.py": "migrations apply, makemigrations --check finds nothing",
    "tests/test_widget.py": "templates render, static JS/CSS, compiled catalogs, Chinese labels",
    "tests/test_admin.py": "admin pages and their templates, Chinese admin",
    "tests/test_api.py": "the REST API, its error envelope in Chinese, the OpenAPI schema",
    "tests/test_backends_local.py": "a pipeline run through the local backend (the engine and its models)",
}
#: In the sdist besides the package (the suite, the docs and what they use).
SDIST_TOP = {
    "docs",
    "tests",
    "example_project",
    "scripts",
    "Makefile",
    "README.md",
    "CHANGELOG.rst",
    "CONTRIBUTING.rst",
    "ADDING_BACKENDS.rst",
    "LICENSE",
    "pyproject.toml",
    "PKG-INFO",
    ".gitignore",
    ".pre-commit-config.yaml",
}
#: In the wheel whatever git says (a checkout with these untracked would let them slip).
NEEDED = {
    "django_tryon/py.typed",
    "django_tryon/locale/zh_Hans/LC_MESSAGES/django.mo",
    "django_tryon/locale/zh_Hans/LC_MESSAGES/djangojs.mo",
    "django_tryon/static/django_tryon/tryon.js",
    "django_tryon/static/django_tryon/tryon.css",
    "django_tryon/templates/django_tryon/button.html",
    "django_tryon/migrations/0001_initial.py",
}
NEVER = ("__pycache__", ".pyc", "/var/", "_build/", ".sqlite3", ".egg-info")


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], cwd=cwd, env=env, check=True)


def tracked(folder: str) -> set[str]:
    """Files under ``folder`` of the checkout: git's list, or the tree without caches outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", folder], cwd=ROOT, capture_output=True, check=True
        ).stdout
        files = {name for name in out.decode().split("\0") if name}
    except (OSError, subprocess.CalledProcessError):
        files = set()
    if not files:
        files = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
    return {name for name in files if (ROOT / name).is_file()}  # deleted but not yet committed: gone


def check_contents(wheel: Path, sdist: Path) -> list[str]:
    """What is missing from or should not be in the two archives (empty when both are right)."""
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if ".dist-info/" not in n}
        metadata = archive.read(
            next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        )
    package = tracked("django_tryon")
    problems += [f"wheel lacks {n}" for n in sorted((package | NEEDED) - names)]
    problems += [f"wheel has {n}" for n in sorted(names - package)]
    problems += [
        f"wheel's entry points lack {s}"
        for s in ("tryon-sandbox", "tryon-engine")
        if s not in metadata.decode()
    ]
    with tarfile.open(sdist) as archive:
        members = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile() and "/" in m.name]
    top = {name.split("/", 1)[0] for name in members}
    problems += [f"sdist lacks {n}" for n in sorted(SDIST_TOP - top)]
    problems += [f"sdist has {n}" for n in sorted(top - SDIST_TOP - {"django_tryon"})]
    for folder in ("django_tryon", "docs", "tests", "example_project", "scripts"):
        problems += [f"sdist lacks {n}" for n in sorted(tracked(folder) - set(members))]
    problems += [
        f"{kind} has {n}"
        for kind, files in (("wheel", names), ("sdist", members))
        for n in sorted(files)
        if any(mark in f"/{n}" for mark in NEVER)
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, help="where the venv, the archives and the test copy go")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (a temporary one is removed)"
    )
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="tryon-wheel-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    venv, dist, tests = work / "venv", work / "dist", work / "run"
    python = venv / "bin" / "python"
    # This interpreter's pip (>= 25.1 for --group) installs into the fresh venv; no .pyc written ahead.
    pip = (sys.executable, "-m", "pip", "--python", python)
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        seconds[name] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()

    try:
        run(sys.executable, "-m", "venv", "--without-pip", venv)
        run(*pip, "install", "--quiet", "--no-compile", "--group", f"{ROOT / 'pyproject.toml'}:wheel-test")
        lap("venv")
        run(python, "-m", "build", "--outdir", dist, ROOT)
        (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
        run(python, "-m", "twine", "check", "--strict", wheel, sdist)
        problems = check_contents(wheel, sdist)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        lap("build")
        run(*pip, "install", "--quiet", "--no-compile", f"{wheel}[{EXTRAS}]")
        lap("install")
        shutil.copytree(ROOT / "tests", tests / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(
            ROOT / "docs", tests / "docs", ignore=shutil.ignore_patterns("_build")
        )  # docs vs code
        shutil.copy2(ROOT / "pyproject.toml", tests)  # pytest's settings only; nothing is built from it here
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
        }
        env.update(DJANGO_TRYON_TEST_INSTALLED="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
        # The photos tests.test_engine.shared() reads, beside the checkout (not beside the copy).
        env.setdefault("TRYON_SHARED_IMAGES", str(ROOT.parent / "shared" / "images"))
        for path, proves in SUBSET.items():
            print(f"  {path}: {proves}")
        run(python, "-m", "pytest", "-p", "no:cacheprovider", "-q", *SUBSET, cwd=tests, env=env)
        lap("tests")
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"wheel": wheel.name, "seconds": {**seconds, "total": round(sum(seconds.values()), 1)}}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as err:
        print(f"failed ({err.returncode}): {' '.join(map(str, err.cmd))}", file=sys.stderr)
        sys.exit(1)
