"""The OpenAPI contract, checked by Schemathesis against the example shop over HTTP.

The shop runs as in production (gunicorn, migrated and seeded by shop_seed; on PostgreSQL in the
suite's PostgreSQL pass, on its own SQLite file otherwise); Schemathesis loads
``/tryon/api/schema/`` and runs every check with a fixed seed and a bounded number of examples, once
with a DRF token and once as an anonymous shopper. The test data the schema cannot describe (ids that
exist, photos of an accepted size) and the one failure dropped, with its reason, are in
tests/schemathesis_hooks.py. Every other failure fails the test, with Schemathesis's report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .test_example_project import ROOT, free_port, manage, shop_env

if sys.version_info < (3, 11):  # the package supports 3.10; Schemathesis 4 does not (pyproject.toml)
    pytest.skip("Schemathesis 4 needs Python 3.11 or newer", allow_module_level=True)

SEED = 14
MAX_EXAMPLES = 25
#: Every check, a fixed seed, a bounded number of examples, one request at a time, no example database.
SCHEMATHESIS = (
    f"--checks all --seed {SEED} --max-examples {MAX_EXAMPLES} --workers 1 --generation-database none --no-color"
).split()
GUNICORN = (
    "example_project.wsgi",
    "--workers=1",
    "--threads=4",
    "--worker-class=gthread",
    "--log-level=warning",
)
#: Any valid CSRF secret: an anonymous shopper's browser sends the csrftoken cookie and the same value in
#: the X-CSRFToken header (Django compares them; no page needs to hand it out first).
CSRF = "contractcsrfsecret0123456789abcd"
#: The limits are lifted so both runs reach their success paths however many try-ons they make (the
#: coverage phase alone sends more invalid creates than the per-address throttle lets through; the 429s
#: and their envelope are tested in tests/test_api.py). The person check is off: it would add its
#: model's start and ~90 ms per photo, and its warnings are tested in tests/test_precheck.py.
SHOP_TRYON = {
    "DAILY_LIMIT_PER_USER": None,
    "DAILY_LIMIT_PER_SESSION": None,
    "MAX_QUEUED_PER_OWNER": None,
    "MAX_QUEUED": None,
    "DAILY_BUDGET_AMOUNT": None,
    "THROTTLE_RATES": {},
    "PERSON_CHECK": "off",
}
#: A user with a token and a saved photo (the one tests/schemathesis_hooks.py names), and an anonymous
#: shopper's session: Schemathesis drops response cookies between requests, so the session a browser gets
#: with its first POST is made here and sent with every request.
SETUP = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("shop_seed")
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token
from django_tryon import services
from django_tryon.models import PersonPhoto
from tests.images import person_photo
from tests.schemathesis_hooks import SAVED_PHOTO
user = get_user_model().objects.create_user("contract")
photo = services.save_photo(image=person_photo(), user=user, consent=True)
PersonPhoto.objects.filter(pk=photo.pk).update(public_id=SAVED_PHOTO)
session = SessionStore()
session["django_tryon"] = True
session.create()
print("SETUP", Token.objects.create(user=user).key, session.session_key)
"""


@contextlib.contextmanager
def shop_database():
    """``SHOP_DATABASE_URL`` of a new PostgreSQL database in the PostgreSQL pass (dropped after), else {}."""
    if os.environ.get("DJANGO_TRYON_TEST_DB") != "postgres":
        yield {}
        return
    import psycopg

    name = f"tryon_contract_{os.getpid()}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"SHOP_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    """The example shop on gunicorn: yields its base URL, a user's token and an anonymous session key."""
    with shop_database() as database:
        yield from _serve_shop(tmp_path_factory.mktemp("contract-shop"), database)


def _serve_shop(var_dir: Path, database: dict[str, str]):
    env = shop_env(var_dir, SHOP_TRYON_JSON=json.dumps(SHOP_TRYON), CELERY_BROKER_URL="memory://", **database)
    done = manage(env, "shell", "-c", SETUP)
    assert done.returncode == 0, done.stderr
    token, session = re.search(r"^SETUP (\w+) (\w+)$", done.stdout, re.MULTILINE).groups()
    port = free_port()
    log = (var_dir / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT / "example_project",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/tryon/api/schema/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("the shop did not start: " + (var_dir / "gunicorn.log").read_text())
        yield base, token, session
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def schemathesis_run(
    base: str, report_dir: Path, *headers: str
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """``st run`` with every check; returns the run and the requests it made (its HAR entries)."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/tryon/api/schema/", *SCHEMATHESIS]
    command += ["--report", "har", "--report-dir", str(report_dir)]
    for header in headers:
        command += ["--header", header]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    # In the report directory: Schemathesis and Hypothesis keep their caches in the working directory.
    run = subprocess.run(
        command, cwd=report_dir, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    entries = [
        entry for har in report_dir.glob("*.json") for entry in json.loads(har.read_text())["log"]["entries"]
    ]
    return run, entries


def seen(entries: list[dict], method: str, path: str, status: int | tuple[int, ...]) -> int:
    """How many requests of ``method`` on ``path`` (``{id}`` for any id) were answered with ``status``
    (or one of several)."""
    statuses = status if isinstance(status, tuple) else (status,)
    pattern = re.compile(re.escape(path).replace(r"\{id\}", "[^/]+") + "$")
    return sum(
        1
        for entry in entries
        if entry["request"]["method"] == method
        and pattern.search(entry["request"]["url"].split("?")[0])
        and entry["response"]["status"] in statuses
    )


def test_contract_with_a_token(shop, tmp_path):
    base, token, _ = shop
    run, entries = schemathesis_run(base, tmp_path, f"Authorization: Token {token}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "Coverage" in run.stdout and "Stateful" in run.stdout
    # The run reached the success paths, not only the errors.
    for method, path, status in [
        ("POST", "/tryons/", 202),
        ("GET", "/tryons/{id}/", 200),
        ("POST", "/tryons/{id}/cancel/", 200),
        ("POST", "/tryons/{id}/retry/", 202),
        ("DELETE", "/tryons/{id}/", 204),
        ("POST", "/photos/", 201),
        ("DELETE", "/photos/{id}/", 204),
        ("GET", "/products/{id}/garments/", 200),
        ("POST", "/tryons/", 404),
        ("POST", "/tryons/{id}/share/", 409),  # no job of this run succeeds (no worker): not shareable
        ("GET", "/tryons/{id}/share/", 404),
        ("DELETE", "/tryons/{id}/share/", (204, 404)),  # an own job's link, or a stranger's job
    ]:
        assert seen(entries, method, f"/tryon/api{path}", status), (method, path, status)


def test_contract_anonymously(shop, tmp_path):
    base, _, session = shop
    run, entries = schemathesis_run(
        base, tmp_path, f"Cookie: sessionid={session}; csrftoken={CSRF}", f"X-CSRFToken: {CSRF}"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout
    # The shopper's session owns what it made: found again, and 404 for the token user's saved photo.
    assert seen(entries, "POST", "/tryon/api/tryons/", 202) and seen(
        entries, "GET", "/tryon/api/tryons/{id}/", 200
    )
    assert seen(entries, "POST", "/tryon/api/photos/", 201) and seen(
        entries, "POST", "/tryon/api/tryons/", 404
    )
