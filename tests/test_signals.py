"""Domain signals: sent after commit, receivers' errors never break the pipeline."""

from __future__ import annotations

from unittest import mock

import pytest

from django_tryon import services, signals
from django_tryon.models import TryOn

from .conftest import admit, step

pytestmark = pytest.mark.django_db


def connect(signal, request):
    def receiver(sender, **kwargs):
        """A receiver."""

    handler = mock.create_autospec(receiver)
    signal.connect(handler, dispatch_uid=f"test-{id(handler)}")
    request.addfinalizer(lambda: signal.disconnect(dispatch_uid=f"test-{id(handler)}"))
    return handler


def test_submitted_and_succeeded_after_commit(
    request, dashscope, person_bytes, top_garment, django_capture_on_commit_callbacks
):
    submitted = connect(signals.tryon_submitted, request)
    succeeded = connect(signals.tryon_succeeded, request)
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    admit(job)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        step(job)
    submitted.assert_not_called()
    for callback in callbacks:
        callback()
    submitted.assert_called_once()
    assert submitted.call_args.kwargs["tryon"].remote_id == dashscope.task_id
    with django_capture_on_commit_callbacks(execute=True):
        step(job)
    assert succeeded.call_args.kwargs["sender"] is TryOn
    assert succeeded.call_args.kwargs["tryon"].status == "succeeded"


def test_failed_carries_code_and_message(
    request, dashscope, person_bytes, top_garment, django_capture_on_commit_callbacks
):
    failed = connect(signals.tryon_failed, request)
    dashscope.submit_ok()
    dashscope.task("FAILED", code="InvalidGarment", message="Missing clothing image.")
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    admit(job)
    with django_capture_on_commit_callbacks(execute=True):
        step(job)
        step(job)
    kwargs = failed.call_args.kwargs
    assert (kwargs["code"], kwargs["message"], kwargs["tryon"].status) == (
        "InvalidGarment",
        "Missing clothing image.",
        "failed",
    )


def test_a_broken_receiver_is_logged_not_raised(
    request, dashscope, person_bytes, top_garment, caplog, django_capture_on_commit_callbacks
):
    broken = connect(signals.tryon_submitted, request)
    broken.side_effect = RuntimeError("receiver bug")
    dashscope.submit_ok()
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    admit(job)
    with django_capture_on_commit_callbacks(execute=True):
        step(job)
    assert TryOn.objects.get(pk=job.pk).status == "submitted"
    assert "receiver bug" in caplog.text
