"""DashScope's asynchronous task management (its asynchronous-task-management page): query, cancel and list the caller's tasks."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, request

from .context import Sandbox
from .state import BEIJING, DAY, Task

API = "/api/v1"


def blueprint(sandbox: Sandbox) -> Blueprint:
    """``GET /tasks/{id}``, ``POST /tasks/{id}/cancel`` and ``GET /tasks``."""
    api = Blueprint("tasks", __name__)
    store, config, fail = sandbox.store, sandbox.config, sandbox.fail

    def visible(task_id: str) -> Task | None:
        with store.lock:
            task = store.tasks.get(task_id)
        if task is None or task.account != sandbox.account():
            return None
        if task.end_time is not None and store.clock.now() - task.end_time > DAY:
            return None  # kept 24 h after completion, then forgotten
        return task

    @api.get(f"{API}/tasks/<task_id>")
    def query(task_id: str) -> Response:
        sandbox.count("queries")
        if not sandbox.allow(("query", g.api_key), config.query_rate):
            sandbox.count("throttled")
            return fail("Throttling")
        broken = sandbox.request_fault("query")
        if broken is not None:
            return broken
        task = visible(task_id)
        if task is None:
            return sandbox.reply({"output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        with store.lock:
            result_url = (
                sandbox.base_url() + store.result_path(task.result) if task.result in store.results else None
            )
            body: dict[str, Any] = {"output": task.output(store.clock, result_url)}
            if task.status == "SUCCEEDED":
                body["usage"] = {"image_count": 1}
        return sandbox.reply(body)

    @api.post(f"{API}/tasks/<task_id>/cancel")
    def cancel(task_id: str) -> Response:
        sandbox.count("cancels")
        if not sandbox.allow(("cancel", g.api_key), config.query_rate):
            return fail("Throttling")
        task = visible(task_id)
        if task is None or not sandbox.scheduler.cancel(task):
            return fail("UnsupportedOperation")
        return sandbox.reply({})

    @api.get(f"{API}/tasks")
    def list_tasks() -> Response:
        sandbox.count("lists")
        if not sandbox.allow(("list", g.api_key), config.query_rate):
            return fail("Throttling")
        args = request.args
        try:
            start = _parse_compact(args.get("start_time"))
            end = _parse_compact(args.get("end_time"))
            page_no = max(1, int(args.get("page_no", 1)))
            page_size = max(1, min(100, int(args.get("page_size", 10))))
        except ValueError:
            return fail("InvalidParameter")
        now = store.clock.now()
        if end is None:  # one day from the start, or the last day
            end = now if start is None else start + DAY
        if start is None:
            start = end - DAY
        if end - start > DAY or end < start:
            return fail("InvalidParameter")
        account = sandbox.account()
        with store.lock:
            tasks = [
                t for t in store.tasks.values() if t.account == account and start <= t.submit_time <= end
            ]
        for name, attr in (("task_id", "task_id"), ("model_name", "model"), ("status", "status")):
            if args.get(name):
                tasks = [t for t in tasks if getattr(t, attr) == args[name]]
        tasks.sort(key=lambda t: t.submit_time, reverse=True)
        page = tasks[(page_no - 1) * page_size : page_no * page_size]
        return sandbox.reply(
            {
                "total": len(tasks),
                "total_page": max(1, math.ceil(len(tasks) / page_size)),
                "page_no": page_no,
                "page_size": page_size,
                "data": [_item(t, account) for t in page],
            }
        )

    return api


def _item(task: Task, account: str) -> dict[str, Any]:
    """One task as the list shows it (epoch milliseconds)."""
    item: dict[str, Any] = {
        "api_key_id": account,
        "caller_parent_id": account,
        "caller_uid": account,
        "gmt_create": int(task.submit_time * 1000),
        "start_time": int((task.scheduled_time or task.submit_time) * 1000),
        "model_name": task.model,
        "region": "cn-beijing",
        "request_id": task.request_id,
        "status": task.status,
        "task_id": task.task_id,
        "user_api_unique_key": f"apikey:v1:aigc:image2image:image-synthesis:{task.model}",
    }
    if task.end_time is not None:
        item["end_time"] = int(task.end_time * 1000)
    return item


def _parse_compact(value: str | None) -> float | None:
    """``YYYYMMDDhhmmss`` (Beijing time) → epoch seconds."""
    if not value:
        return None
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
