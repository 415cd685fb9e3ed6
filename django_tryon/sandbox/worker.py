"""Running tasks: a queue per model with at most ``concurrency`` tasks in flight, each rendered by the
offline engine from the inputs it downloads, on the documented status path and latency."""

from __future__ import annotations

import collections
import io
import random
import threading
import time

from PIL import Image, ImageFilter

from .inputs import InputError, load
from .messages import ERRORS
from .state import REFINER, Store, Task


class Scheduler:
    """A queue per account and model (the service's limits are per main account and model: its rate-limit page); tasks
    wait PENDING until one of their account's slots for the model is free."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queues: dict[tuple[str, str], collections.deque] = collections.defaultdict(collections.deque)
        self.running: collections.Counter = collections.Counter()
        self.random = random.Random(store.config.seed)

    def submit(self, task: Task, *, reject_when_full: bool = False) -> bool:
        """Queue ``task``; with ``reject_when_full``, refuse it (False) when its account's slots are all taken."""
        slot = (task.account, task.model)
        with self.store.lock:
            if (
                reject_when_full
                and self.running[slot] + len(self.queues[slot]) >= self.store.config.concurrency
            ):
                return False
            self.queues[slot].append(task)
        self._pump(slot)
        return True

    def cancel(self, task: Task) -> bool:
        slot = (task.account, task.model)
        with self.store.lock:
            if task.status != "PENDING" or task not in self.queues[slot]:
                return False
            self.queues[slot].remove(task)
            task.status = "CANCELED"
            task.end_time = self.store.clock.now()
            return True

    def _pump(self, slot: tuple[str, str]) -> None:
        stats, model = self.store.stats, slot[1]
        with self.store.lock:
            while self.queues[slot] and self.running[slot] < self.store.config.concurrency:
                task = self.queues[slot].popleft()
                self.running[slot] += 1
                stats["running"][model] += 1
                stats["max_concurrency_seen"][model] = max(
                    stats["max_concurrency_seen"][model], self.running[slot]
                )
                threading.Thread(
                    target=self._run, args=(task,), daemon=True, name=f"task-{task.task_id[:8]}"
                ).start()

    def _run(self, task: Task) -> None:
        try:
            process(self.store, task)
        except Exception as err:  # noqa: BLE001 - a sandbox bug must still end the task
            finish(self.store, task, "FAILED", "InternalError", f"sandbox error: {type(err).__name__}: {err}")
        finally:
            slot = (task.account, task.model)
            with self.store.lock:
                self.running[slot] -= 1
                self.store.stats["running"][task.model] -= 1
            self._pump(slot)


def finish(
    store: Store, task: Task, status: str, code: str = "", message: str = "", result: str | None = None
) -> None:
    with store.lock:
        task.status, task.code, task.message, task.result = status, code, message, result
        task.end_time = store.clock.now()


def _set(store: Store, task: Task, status: str) -> None:
    with store.lock:
        task.status = status


def process(store: Store, task: Task) -> None:
    started = time.monotonic()
    fault = task.fault
    duration = float(fault.arg) if fault is not None and fault.what == "slow" else task.duration
    with store.lock:
        task.status = "PRE-PROCESSING"
        task.scheduled_time = store.clock.now()
    try:
        images = {key: load(store, url) for key, url in task.inputs.items() if key.endswith("_url")}
    except InputError as err:
        _sleep_until(started + min(1.0, duration * 0.1))
        finish(store, task, "FAILED", err.code, err.message)
        return
    if fault is not None and fault.what in ("fail", "inspection", "stall"):
        code = {"inspection": "DataInspectionFailed", "stall": "InternalError.Timeout"}.get(
            fault.what, fault.arg
        )
        _sleep_until(started + duration * 0.5)
        finish(store, task, "FAILED", code, ERRORS.get(code, (400, "Injected failure."))[1])
        return
    _set(store, task, "RUNNING")
    try:
        picture = render(store, task, images)
    except InputError as err:
        finish(store, task, "FAILED", err.code, err.message)
        return
    _sleep_until(started + duration * 0.85)
    _set(store, task, "POST-PROCESSING")
    # Each phase stays visible to pollers, even when a cold engine overran the render's share of the time.
    _sleep_until(max(started + duration, time.monotonic() + duration * 0.15))
    name, _ = store.put_result(picture, "image/jpeg")
    finish(store, task, "SUCCEEDED", result=name)


def render(store: Store, task: Task, images: dict[str, bytes | None]) -> bytes:
    """The result picture, made from the actual inputs by the offline engine."""
    from ..engine import RenderError, check_person, render_tryon

    person = _required(images, "person_image_url")
    buffer = io.BytesIO()
    if task.model == REFINER:
        coarse = Image.open(io.BytesIO(_required(images, "coarse_image_url"))).convert("RGB")
        if coarse.size != Image.open(io.BytesIO(person)).size:
            raise InputError("InvalidParameter", ERRORS["SizeMismatch"][1])
        refined = coarse.filter(ImageFilter.UnsharpMask(radius=2, percent=60, threshold=2))
        refined.save(buffer, "JPEG", quality=95)
        return buffer.getvalue()
    if store.config.check_person:
        verdict = check_person(person)
        if not verdict.ok:
            raise InputError("InvalidPerson")
    if store.config.render == "copy":  # load runs: the provider's picture costs no CPU on this machine
        return person
    params = task.parameters
    try:
        image = render_tryon(
            person,
            images.get("top_garment_url"),
            images.get("bottom_garment_url"),
            resolution=int(params.get("resolution", -1)),
            restore_face=bool(params.get("restore_face", True)),
        )
    except RenderError as err:
        raise InputError(err.code if err.code in ERRORS else "InvalidParameter") from None
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def _required(images: dict[str, bytes | None], key: str) -> bytes:
    """An input the submit handler made sure was given."""
    data = images.get(key)
    if data is None:
        raise InputError("InvalidParameter")
    return data


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
