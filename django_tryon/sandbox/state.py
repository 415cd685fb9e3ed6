"""The sandbox's memory: configuration, a shiftable clock, rate limits, tasks, uploads and results."""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .faults import FaultBook

BEIJING = timezone(timedelta(hours=8))
DAY = 24 * 3600
UPLOAD_LIFETIME = 48 * 3600
POLICY_LIFETIME = 300
TRYON_MODELS = ("aitryon", "aitryon-plus")
REFINER = "aitryon-refiner"
PARSING = "aitryon-parsing-v1"
#: Typical durations (seconds, min–max) per model (the OutfitAnyone and refiner API pages).
DEFAULT_LATENCY = {
    "aitryon": (15.0, 30.0),
    "aitryon-plus": (40.0, 60.0),
    REFINER: (5.0, 15.0),
    "qwen-image-edit-plus": (8.0, 20.0),
    "qwen-image-edit": (8.0, 20.0),
    "qwen-image-edit-max": (15.0, 30.0),
    "tryon-v1.6": (5.0, 12.0),
}


@dataclass
class Config:
    api_keys: tuple[str, ...] = ("sk-sandbox",)
    fashn_keys: tuple[str, ...] = ("fa-sandbox",)  # the FASHN-compatible API's own keys
    latency: float | None = None  # mean seconds; None = the documented ranges
    latency_spread: float = 0.5  # durations are uniform in latency × (1 ± spread)
    concurrency: int = 5
    concurrency_policy: str = "queue"  # or "reject"
    submit_rate: float = 10.0  # per second, per key and model
    query_rate: float = 20.0  # per second, per key
    policy_rate: float = 100.0  # getPolicy per second, per key and model
    faults: str = ""
    fault_timeout: float = 35.0  # how long a "timeout" fault keeps the client waiting
    fetch_timeout: float = 10.0  # downloading input URLs
    check_person: bool = True
    render: str = (
        "engine"  # or "copy": the result is the person photo (load runs measure the client, not the engine)
    )
    public_url: str = ""  # base of URLs the sandbox hands out (results, uploads); default from the request
    seed: int | None = None
    #: Host names the sandbox answers besides localhost (and public_url's host); "*" answers any.
    allowed_hosts: tuple[str, ...] = ()

    def host_names(self) -> frozenset[str] | None:
        """The Host header names served (None: any), so a DNS-rebinding page cannot reach the sandbox."""
        if "*" in self.allowed_hosts:
            return None
        names = {"localhost", "127.0.0.1", "::1", *(h.lower() for h in self.allowed_hosts)}
        if self.public_url:
            names.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(names)

    def duration(self, model: str, rnd: Any) -> float:
        low, high = DEFAULT_LATENCY.get(model, (15.0, 30.0))
        if self.latency is not None:
            low, high = self.latency * (1 - self.latency_spread), self.latency * (1 + self.latency_spread)
        return rnd.uniform(low, high)


class Clock:
    """Real time plus an offset that tests can advance (24 h expiries without waiting a day)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    @staticmethod
    def format(ts: float | None) -> str | None:
        """``YYYY-MM-DD HH:MM:SS.mmm`` in Beijing time, as DashScope writes it."""
        if ts is None:
            return None
        return datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class RateLimiter:
    """Sliding one-second windows per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[Any, collections.deque] = collections.defaultdict(collections.deque)

    def allow(self, key: Any, per_second: float) -> bool:
        now = time.monotonic()
        with self.lock:
            window = self.windows[key]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= per_second:
                return False
            window.append(now)
            return True


@dataclass
class Task:
    task_id: str
    account: str
    model: str
    inputs: dict[str, Any]
    parameters: dict[str, Any]
    oss_resolve: bool
    submit_time: float
    duration: float
    request_id: str
    fault: Any = None
    status: str = "PENDING"
    scheduled_time: float | None = None
    end_time: float | None = None
    code: str = ""
    message: str = ""
    result: str | None = None  # name in the result store
    canceled: threading.Event = field(default_factory=threading.Event)

    def output(self, clock: Clock, result_url: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id, "task_status": self.status}
        out["submit_time"] = clock.format(self.submit_time)
        if self.scheduled_time is not None:
            out["scheduled_time"] = clock.format(self.scheduled_time)
        if self.end_time is not None:
            out["end_time"] = clock.format(self.end_time)
        if self.status == "SUCCEEDED" and result_url:
            out["image_url"] = result_url
        if self.status == "FAILED":
            out["code"], out["message"] = self.code, self.message
        return out


@dataclass
class Upload:
    content: bytes
    model: str
    account: str
    created: float


class Store:
    """Everything the sandbox remembers, behind one lock."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock = Clock()
        self.faults = FaultBook(config.faults, config.seed)
        self.secret = secrets.token_bytes(16)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.limiter = RateLimiter()
            self.tasks: dict[str, Task] = {}
            self.uploads: dict[str, Upload] = {}
            self.policies: dict[str, tuple[str, str, float]] = {}  # policy → (account, model, expires)
            self.results: dict[str, tuple[bytes, int, str]] = {}  # name → (bytes, expires, content type)
            running = getattr(self, "stats", {}).get(
                "running", collections.Counter()
            )  # tasks still in flight
            self.stats: dict[str, Any] = {
                "submits": 0,
                "accepted": 0,
                "queries": 0,
                "lists": 0,
                "cancels": 0,
                "throttled": 0,
                "throttled_submits": 0,
                "generations": 0,
                "fashn_runs": 0,
                "fashn_queries": 0,
                "uploads": 0,
                "parsing": 0,
                "downloads": 0,
                "faults": 0,
                "running": running,
                "max_concurrency_seen": collections.Counter(),
            }
            self.clock.offset = 0.0

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def account_of(self, key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    # -- results ---------------------------------------------------------------------------------
    def sign(self, name: str, expires: int) -> str:
        return hmac.new(self.secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def put_result(self, content: bytes, content_type: str = "image/jpeg") -> tuple[str, int]:
        name = f"{uuid.uuid4().hex}.{'png' if content_type == 'image/png' else 'jpg'}"
        expires = int(self.clock.now() + DAY)
        with self.lock:
            self.results[name] = (content, expires, content_type)
        return name, expires

    def result_path(self, name: str) -> str:
        _, expires, _ = self.results[name]
        return f"/_results/{name}?Expires={expires}&Signature={self.sign(name, expires)}"
