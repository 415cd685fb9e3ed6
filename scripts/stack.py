"""A production-like run of the example shop, for ``make bench``, ``make chaos`` and the load tests.

One ``Stack`` is: a database of its own (PostgreSQL on 127.0.0.1:5432, or SQLite), a Redis server of
its own on a free port (so a test can kill it without touching the machine's), the bundled sandbox
as the provider with its limits on in reject mode, the example shop served over HTTP, Celery worker
processes (prefork, each with its own hostname) and Celery beat for the tick. Shoppers are HTTP
clients of the REST API. Nothing here imports Django until ``django_setup()``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
#: What the load runs lift: the per-shopper limits are for strangers, not for a benchmark's own clients.
#: No limit in the way; no person check either (the drawn load photos would only get warnings, and like the
#: sandbox's --render copy it keeps the machine's CPU for what is measured: the dispatcher).
UNLIMITED = {
    "THROTTLE_RATES": {},
    "DAILY_LIMIT_PER_SESSION": None,
    "DAILY_LIMIT_PER_USER": None,
    "MAX_QUEUED_PER_OWNER": None,
    "MAX_QUEUED": None,
    "DAILY_BUDGET_AMOUNT": None,
    "DEDUP_TTL": 0,
    "PERSON_CHECK": "off",
}
PROVIDER_CONCURRENCY = 5
#: Seconds between a shopper's looks at a job: the widget's pace (tryon.js POLL_MS).
POLL_EVERY = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class Options:
    jobs: int = 200
    latency: float = 2.0
    spread: float = 0.2
    keys: int = 1
    workers: int = 2
    concurrency: int = 4
    clients: int = 50
    database: str = "postgres"  # or "sqlite"
    faults: str = ""
    naive: bool = False  # jobs run by the naive baseline task instead of the dispatcher
    tryon: dict[str, Any] = field(default_factory=dict)
    seed: int = 1


class Stack:
    """Start everything in ``__enter__``, stop and remove everything in ``__exit__``."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.work = Path(tempfile.mkdtemp(prefix="tryon-run-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self.keys = [f"sk-run-{i + 1}" for i in range(options.keys)]
        self.db_name = f"tryon_run_{os.getpid()}_{random.randrange(10**6)}"
        self.redis_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{free_port()}"
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.restarts: list[str] = []  # processes the supervisor started again after they died
        self._supervising = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._supervising.clear()
        for name in list(self.processes):
            self.stop(name)
        if self.options.database == "postgres":
            with contextlib.suppress(Exception):
                self._postgres(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        if os.environ.get("RUN_KEEP"):  # keep the run's logs and files for a closer look
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def _start(self) -> None:
        if self.options.database == "postgres":
            self._postgres(f'CREATE DATABASE "{self.db_name}"')
        self.start_redis()
        self._manage("migrate", "--noinput")
        self._manage("shop_seed")
        sandbox = [
            sys.executable,
            "-m",
            "django_tryon.sandbox",
            "--port",
            self.sandbox_url.rsplit(":", 1)[1],
            "--latency",
            str(self.options.latency),
            "--latency-spread",
            str(self.options.spread),
            "--concurrency",
            str(PROVIDER_CONCURRENCY),
            "--concurrency-policy",
            "reject",
            "--seed",
            str(self.options.seed),
            "--quiet",
            "--no-check-person",
            "--render",
            "copy",
        ]
        for key in self.keys:
            sandbox += ["--api-key", key]
        self._spawn("sandbox", sandbox)
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_project.wsgi",
                "--bind",
                self.web_url.rsplit("/", 1)[1],
                "--workers",
                "2",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--log-level",
                "warning",
            ],
            cwd=EXAMPLE,
        )
        for index in range(self.options.workers):
            self.start_worker(index)
        self._start_beat()
        wait_until(
            lambda: requests.get(f"{self.sandbox_url}/_sandbox/health", timeout=1).ok, 60, "the sandbox"
        )
        wait_until(
            lambda: requests.get(f"{self.web_url}/tryon/api/tryons/", timeout=2).ok, 60, "the web server"
        )
        self._warm_up_provider()
        self._supervising.set()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        """Start a worker or beat again when it exits on its own, as systemd's Restart=always would
        (Celery 5.7.0 workers exit on a lost Redis connection: see docs/deployment.rst)."""
        while self._supervising.is_set():
            for name, process in list(self.processes.items()):
                if (
                    name.startswith(("worker", "beat"))
                    and process.poll() is not None
                    and self._supervising.is_set()
                ):
                    self.processes.pop(name, None)
                    process.log.close()  # type: ignore[attr-defined]
                    self.restarts.append(name)
                    if name == "beat":
                        self._start_beat()
                    else:
                        self.start_worker(int(name[len("worker") :]))
            time.sleep(0.5)

    def _warm_up_provider(self) -> None:
        """One task straight to the sandbox first, so its engine's models are loaded before the timed run
        (the provider's cold start is not what a run measures)."""
        headers = {"Authorization": f"Bearer {self.keys[0]}", "X-DashScope-Async": "enable"}
        photo = person_photos()[0]
        for key in self.keys:
            headers["Authorization"] = f"Bearer {key}"
            policy = requests.get(
                f"{self.sandbox_url}/api/v1/uploads",
                params={"action": "getPolicy", "model": "aitryon"},
                headers=headers,
                timeout=10,
            ).json()["data"]
            object_key = f"{policy['upload_dir']}/warm-up.jpg"
            requests.post(
                policy["upload_host"],
                timeout=10,
                files={"file": ("warm-up.jpg", photo, "image/jpeg")},
                data={
                    "OSSAccessKeyId": policy["oss_access_key_id"],
                    "Signature": policy["signature"],
                    "policy": policy["policy"],
                    "key": object_key,
                    "success_action_status": "200",
                },
            )
            body = {
                "model": "aitryon",
                "input": {
                    "person_image_url": f"oss://{object_key}",
                    "top_garment_url": f"oss://{object_key}",
                },
            }
            task = requests.post(
                f"{self.sandbox_url}/api/v1/services/aigc/image2image/image-synthesis",
                json=body,
                headers={**headers, "X-DashScope-OssResourceResolve": "enable"},
                timeout=10,
            ).json()
            task_id = task["output"]["task_id"]
            wait_until(
                lambda task_id=task_id: (
                    requests.get(
                        f"{self.sandbox_url}/api/v1/tasks/{task_id}", headers=headers, timeout=5
                    ).json()["output"]["task_status"]
                    in ("SUCCEEDED", "FAILED")
                ),
                120,
                "the warm-up task",
                step=0.5,
            )
        requests.post(f"{self.sandbox_url}/_sandbox/reset", headers=headers, timeout=10)
        if self.options.faults:  # armed after the warm-up
            requests.post(
                f"{self.sandbox_url}/_sandbox/faults",
                json={"spec": self.options.faults},
                headers=headers,
                timeout=10,
            ).raise_for_status()

    @property
    def env(self) -> dict[str, str]:
        tryon = {**UNLIMITED, **self.options.tryon}
        if len(self.keys) > 1:
            tryon["KEY_POOL"] = [
                {"name": f"account-{i + 1}", "api_key": key} for i, key in enumerate(self.keys)
            ]
        if self.options.naive:  # the dispatcher admits nothing: the naive task does everything itself
            tryon["KEY_POOL"] = [{"name": "default", "max_concurrency": 0}]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DASHSCOPE_", "DJANGO_SETTINGS", "CELERY_"))
        }
        env.update(
            SHOP_VAR_DIR=str(self.work / "var"),
            SHOP_DEBUG="0",
            DASHSCOPE_API_KEY=self.keys[0],
            DASHSCOPE_BASE_URL=f"{self.sandbox_url}/api/v1",
            CELERY_BROKER_URL=self.broker_url,
            SHOP_TRYON_JSON=json.dumps(tryon),
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "scripts")]),
            DJANGO_SETTINGS_MODULE="example_project.settings",
        )
        if self.options.database == "postgres":
            env["SHOP_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{self.db_name}"
        return env

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _postgres(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def _manage(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def _spawn(self, name: str, argv: list[str], cwd: Path = ROOT) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            argv, cwd=cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        process.log.close()  # type: ignore[attr-defined]

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- parts that chaos runs kill --------------------------------------------------------------
    def start_worker(self, index: int) -> None:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "example_project",
            "worker",
            "-n",
            f"w{index + 1}@%h",
            "-P",
            "prefork",
            "-c",
            str(self.options.concurrency),
            "-l",
            "warning",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]
        if self.options.naive:
            argv += ["-I", "naive_tasks"]
        self._spawn(f"worker{index}", argv, cwd=EXAMPLE)

    def _start_beat(self) -> None:
        self._spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "example_project",
                "beat",
                "-l",
                "warning",
                "-s",
                str(self.work / "beat-schedule"),
            ],
            cwd=EXAMPLE,
        )

    def kill_worker(self, index: int) -> None:
        """``kill -9`` of a worker and its pool processes."""
        self.stop(f"worker{index}", signal.SIGKILL)

    def start_redis(self) -> None:
        self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.redis_port), timeout=1), 20, "Redis")

    def kill_redis(self) -> None:
        self.stop("redis", signal.SIGKILL)

    # -- observing ----------------------------------------------------------------------------
    def worker_processes(self) -> list[Any]:
        import psutil

        found = []
        for name, process in self.processes.items():
            if name.startswith("worker"):
                with contextlib.suppress(psutil.NoSuchProcess):
                    parent = psutil.Process(process.pid)
                    found += [parent, *parent.children(recursive=True)]
        return found

    def sandbox(self, path: str) -> dict[str, Any]:
        return requests.get(
            f"{self.sandbox_url}/_sandbox/{path}",
            headers={"Authorization": f"Bearer {self.keys[0]}"},
            timeout=10,
        ).json()

    def django_setup(self) -> None:
        """Use the run's database from this process (the ORM for the figures)."""
        os.environ.update(self.env)
        sys.path[:0] = [str(ROOT), str(EXAMPLE)]
        import django

        django.setup()


class Shopper(threading.Thread):
    """One HTTP client of the REST API: creates its jobs, then polls them until they end."""

    def __init__(
        self, stack: Stack, jobs: int, photos: list[bytes], product: int, start: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.stack, self.jobs, self.photos, self.product, self.start_event = (
            stack,
            jobs,
            photos,
            product,
            start,
        )
        self.session = requests.Session()
        token = "".join(random.choices(string.ascii_letters + string.digits, k=32))
        self.session.cookies.set("csrftoken", token)
        self.session.headers["X-CSRFToken"] = token
        self.ids: list[str] = []
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self.halt = threading.Event()  # set to stop polling (a run that gives up)

    def run(self) -> None:
        self.start_event.wait()
        base = self.stack.web_url
        for n in range(self.jobs):
            photo = self.photos[n % len(self.photos)]
            try:
                response = self.session.post(
                    f"{base}/tryon/api/tryons/",
                    timeout=60,
                    data={"consent": "true", "product": self.product},
                    files={"person_image": ("me.jpg", photo, "image/jpeg")},
                )
            except requests.RequestException as err:
                self.errors.append(f"create: {type(err).__name__}: {err}")
                continue
            if response.status_code != 202:
                self.errors.append(f"create {response.status_code}: {response.text[:200]}")
                continue
            self.ids.append(response.json()["id"])
        pending = set(self.ids)
        while pending and not self.halt.is_set():
            for job_id in list(pending):
                started = time.perf_counter()
                with contextlib.suppress(requests.RequestException):
                    response = self.session.get(f"{base}/tryon/api/tryons/{job_id}/", timeout=30)
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                    if response.ok and response.json()["status"] in ("succeeded", "failed", "canceled"):
                        pending.discard(job_id)
            time.sleep(POLL_EVERY)


def person_photos(count: int = 4) -> list[bytes]:
    """Valid photos for the load runs, made here. The sandbox runs with ``--render copy`` and without its
    person check, so what they show does not matter (and no licensed photo is needed)."""
    import io

    from PIL import Image

    photos = []
    for seed in range(count):
        rnd = random.Random(seed)
        image = Image.frombytes("RGB", (480, 800), bytes(rnd.getrandbits(8) for _ in range(480 * 800 * 3)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=60)
        photos.append(buffer.getvalue())
    return photos


def create_and_poll(stack: Stack, jobs: int, clients: int) -> tuple[list[Shopper], float]:
    """``jobs`` try-ons from ``clients`` shoppers at once; returns the shoppers and the time creating began."""
    photos = person_photos()
    go = threading.Event()
    per_client = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
    shoppers = [Shopper(stack, n, photos, product=1, start=go) for n in per_client if n]
    for shopper in shoppers:
        shopper.start()
    began = time.time()
    go.set()
    return shoppers, began


def summarize(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "mean": statistics.fmean(values) if values else None,
    }


def media_orphans(stack: Stack) -> int:
    """Files under the run's media folder that no database row names (call after django_setup)."""
    from django_tryon.models import Garment, PersonPhoto, TryOn

    media = stack.work / "var" / "media"
    on_disk = (
        {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()} if media.exists() else set()
    )
    named = set()
    for model, fields in (
        (TryOn, ("person_image", "top_image", "bottom_image", "result_image")),
        (PersonPhoto, ("image",)),
        (Garment, ("image",)),
    ):
        for row in model.objects.values_list(*fields):
            named.update(name for name in row if name)
    return len(on_disk - named)


def job_rows() -> list[dict[str, Any]]:
    from django_tryon.models import TryOn

    return list(
        TryOn.objects.values(
            "pk",
            "public_id",
            "status",
            "error_code",
            "poll_count",
            "resubmits",
            "created_at",
            "admitted_at",
            "submitted_at",
            "remote_submitted_at",
            "finished_at",
            "remote_ended_at",
            "ticket",
        )
    )
