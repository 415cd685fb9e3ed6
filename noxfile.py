"""The compatibility matrix: Django 4.2, 5.2 and 6.0, each with the oldest supported versions of DRF,
Celery and the other dependencies (``constraints/oldest.txt``) and with the latest.

``make matrix`` runs every session; ``nox -l`` lists them and ``nox -s "matrix(django60-latest)"`` runs one.
The newest combination runs the whole suite on SQLite, then the subset below on PostgreSQL; the others run
the subset on SQLite. The real-worker tests in the subset need Redis and RabbitMQ (required under CI=true).
Which Python runs which session, and why, is in docs/testing.rst.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

nox.options.default_venv_backend = "uv|virtualenv"  # uv installs a session in seconds once its cache is warm
nox.options.download_python = "never"  # this machine's interpreters only (pyenv's, see _interpreter)
nox.options.sessions = ["matrix"]

#: What each combination must get right where the supported versions differ: settings and system checks,
#: the models and migrations (Django's ORM and migration writer), image validation (Pillow), the DashScope
#: wire format (requests), the services, the pipeline and the tasks (Celery's API), the REST API and its
#: OpenAPI schema (DRF, drf-spectacular), the admin (Django's templates), storage (django-storages) and a
#: real worker process on Redis and on RabbitMQ (Celery, kombu, redis-py, py-amqp).
SUBSET = [
    "tests/test_conf.py",
    "tests/test_models.py",
    "tests/test_migrations.py",
    "tests/test_validators.py",
    "tests/test_backends_dashscope.py",
    "tests/test_services.py",
    "tests/test_pipeline.py",
    "tests/test_tasks.py",
    "tests/test_api.py",
    "tests/test_admin.py",
    "tests/test_storage.py",
    "tests/test_worker.py",
]

#: Reported after the install, so the log shows what each combination resolved to.
REPORTED = (
    "Django",
    "djangorestframework",
    "celery",
    "kombu",
    "redis",
    "amqp",
    "drf-spectacular",
    "django-storages",
    "Pillow",
    "requests",
    "numpy",
    "psycopg",
)

DJANGO = {"4.2": "Django>=4.2,<5.0", "5.2": "Django>=5.2,<6.0", "6.0": "Django>=6.0,<6.1"}
NEWEST = ("3.12", "6.0", "latest")


def _interpreter(version: str) -> str:
    """This machine's Python ``version``: on the PATH, or else one installed by pyenv (CI's machine has
    3.10 to 3.13 under ``~/.pyenv/versions`` with only 3.11 on the PATH). A plain version string when none
    is found: nox then skips the session, or fails it under CI=true."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pyenv = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    found = [shutil.which(f"python{version}"), *pyenv]
    for candidate in filter(None, found):
        if subprocess.run([candidate, "--version"], capture_output=True, check=False).returncode == 0:
            return candidate
    return version


def _param(python: str, django: str, deps: str) -> nox.param:
    return nox.param(
        _interpreter(python),
        django,
        deps,
        (python, django, deps) == NEWEST,
        id=f"django{django.replace('.', '')}-{deps}",
    )


@nox.session
@nox.parametrize(
    ["python", "django", "deps", "newest"],
    [
        # Django 4.2 supports Python 3.8-3.12, 5.2 3.10-3.13, 6.0 3.12-3.14; the package 3.10-3.13, its
        # engine extra (mediapipe) 3.10-3.12: the whole suite needs it, so the newest session is on 3.12.
        _param("3.10", "4.2", "oldest"),
        _param("3.11", "4.2", "latest"),
        _param("3.11", "5.2", "oldest"),
        _param("3.13", "5.2", "latest"),
        _param("3.12", "6.0", "oldest"),
        _param(*NEWEST),
    ],
)
def matrix(session: nox.Session, django: str, deps: str, newest: bool) -> None:
    """Install the checkout with its extras and the test group at one combination of versions, and test it."""
    constraints = ["-c", "constraints/oldest.txt"] if deps == "oldest" else []
    session.install(
        "-e",
        ".[redis,engine,sandbox]",
        *nox.project.dependency_groups(PYPROJECT, "test"),
        DJANGO[django],
        *constraints,
    )
    session.run(
        "python",
        "-c",
        "import sys, importlib.metadata as m; "
        "print(sys.version.split()[0], *(f'{n}=={m.version(n)}' for n in sys.argv[1:]))",
        *REPORTED,
    )
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs]
    # uv does not compile bytecode at install (pip does): with PYTHONDONTWRITEBYTECODE set, as on this
    # machine, every worker, sandbox and CLI process would compile its imports again (the suite 1.5x slower).
    env: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None}
    if newest:
        session.run(*pytest, "-m", "not load", env=env)
        # A database of its own, so a `make test` PostgreSQL pass running at the same time is not disturbed.
        postgres = {
            "DJANGO_TRYON_TEST_DB": "postgres",
            "DJANGO_TRYON_TEST_DB_NAME": f"test_django_tryon_nox_{os.getpid()}",
        }
        session.run(*pytest, *SUBSET, env={**env, **postgres})
    else:
        session.run(*pytest, *SUBSET, env=env)
