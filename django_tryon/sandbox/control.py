"""``/_sandbox/...``: introspection and control for tests and load runs (statistics, every task, reset,
the shiftable clock, armed faults, health). All but ``health`` need an API key."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Response, request

from .context import Sandbox

PREFIX = "/_sandbox"


def blueprint(sandbox: Sandbox) -> Blueprint:
    """The control endpoints of one sandbox."""
    api = Blueprint("control", __name__, url_prefix=PREFIX)
    store, reply = sandbox.store, sandbox.reply

    @api.get("/stats")
    def stats() -> Response:
        with store.lock:
            body = {k: (dict(v) if hasattr(v, "items") else v) for k, v in store.stats.items()}
            body["tasks"] = _count(t.status for t in store.tasks.values())
            body["faults_armed"] = store.faults.describe()
            body["clock_offset"] = store.clock.offset
        return reply(body)

    @api.get("/tasks")
    def all_tasks() -> Response:
        """Every task with its inputs and times (a run's analysis: which job had how many accepted tasks)."""
        with store.lock:
            tasks = [
                {
                    "task_id": t.task_id,
                    "account": t.account,
                    "model": t.model,
                    "status": t.status,
                    "code": t.code,
                    "inputs": t.inputs,
                    "submit_time": t.submit_time,
                    "end_time": t.end_time,
                }
                for t in store.tasks.values()
            ]
        return reply({"tasks": tasks})

    @api.post("/reset")
    def reset() -> Response:
        store.reset()
        store.faults.replace(sandbox.config.faults)
        return reply({})

    @api.post("/clock")
    def clock() -> Response:
        store.clock.advance(float((request.get_json(silent=True) or {}).get("advance", 0)))
        return reply({"offset": store.clock.offset})

    @api.post("/faults")
    def set_faults() -> Response:
        try:
            store.faults.replace((request.get_json(silent=True) or {}).get("spec", ""))
        except ValueError as err:
            return reply({"code": "InvalidParameter", "message": str(err)}, 400)
        return reply({"faults": store.faults.describe()})

    @api.get("/health")
    def health() -> Response:
        return reply({"ok": True})

    return api


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
