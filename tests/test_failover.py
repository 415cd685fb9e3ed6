"""The failover chain (TRYON["BACKENDS"]): refusals, the circuit breaker, the record of attempts, the
admin's banner and the system check; against mocked providers (``responses``)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from django_tryon import admission, routing, services
from django_tryon.backends import routes
from django_tryon.checks import check_settings
from django_tryon.models import TryOn, TryOnAttempt, TryOnRoute

from .conftest import BASE, SUBMIT_URL, admit, step

pytestmark = pytest.mark.django_db
EDIT_URL = f"{BASE}/services/aigc/multimodal-generation/generation"
RESULT = "https://dashscope-result.oss.test/edit.png?Expires=1&Signature=x"
KEY = {"api_key": "sk-test-secret-key", "base_url": BASE}
CHAIN = {
    "BACKENDS": [
        {
            "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
            "OPTIONS": {**KEY, "model": "aitryon"},
        },
        {"BACKEND": "django_tryon.backends.dashscope_image_edit.DashScopeImageEditBackend", "OPTIONS": KEY},
    ],
    "PUBLIC_BASE_URL": "https://shop.test",
    "PRICES": {"aitryon": "0.20", "qwen-image-edit-plus": "0.30"},
}


@pytest.fixture(autouse=True)
def chain():
    with override_settings(TRYON=CHAIN):
        yield


def edit_ok(dashscope) -> None:
    dashscope.rsps.post(
        EDIT_URL,
        json={
            "request_id": "r-edit",
            "usage": {"image_count": 1},
            "output": {
                "choices": [
                    {
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": [{"image": RESULT}]},
                    }
                ]
            },
        },
    )
    import re

    from . import images

    dashscope.rsps.get(
        re.compile(r"https://dashscope-result\.oss\.test/.*"),
        body=images.jpeg(480, 800),
        content_type="image/png",
    )


def new_job(person_bytes, top_garment, **kwargs):
    return services.create_tryon(
        person_image=person_bytes, top_garment=top_garment, owner_key="shopper", dispatch_now=False, **kwargs
    )


def test_the_chain_and_its_names():
    assert [r.name for r in routes()] == ["dashscope:aitryon", "dashscope-image-edit:qwen-image-edit-plus"]
    with override_settings(TRYON={"OPTIONS": KEY}):  # no BACKENDS: one route from BACKEND and OPTIONS
        assert [r.name for r in routes()] == ["dashscope"]


def test_a_retired_model_fails_over_and_the_job_succeeds_on_the_next_route(
    dashscope, person_bytes, top_garment
):
    dashscope.error("POST", SUBMIT_URL, 403, "Endpoint.AccessDenied", "Workspace endpoint access denied.")
    edit_ok(dashscope)
    job = admit(new_job(person_bytes, top_garment))
    assert job.route == "dashscope:aitryon" and TryOnAttempt.objects.get().price == Decimal("0.20")
    step(job)  # refused: moved to the next route and admitted there
    job.refresh_from_db()
    assert (job.status, job.route, job.model_name) == (
        "submitting",
        "dashscope-image-edit:qwen-image-edit-plus",
        "qwen-image-edit-plus",
    )
    step(job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.backend == "dashscope-image-edit"
    attempt = job.history[-1]
    assert (attempt["route"], attempt["model"], attempt["outcome"], attempt["cost"]) == (
        "dashscope:aitryon",
        "aitryon",
        "ModelNotAvailable",
        "0",
    )
    assert TryOnAttempt.objects.get().price == Decimal("0.30")  # charged what the route that worked costs
    refused = TryOnRoute.objects.get(name="dashscope:aitryon")
    assert refused.refused_since and refused.refused_code == "ModelNotAvailable"


def test_new_jobs_skip_a_refused_route_until_it_is_probed_again(dashscope, person_bytes, top_garment):
    routing.refuse("dashscope:aitryon", "ModelNotAvailable", "retired")
    job = new_job(person_bytes, top_garment)
    assert (
        job.route == "dashscope-image-edit:qwen-image-edit-plus" and job.model_name == "qwen-image-edit-plus"
    )
    TryOnRoute.objects.filter(name="dashscope:aitryon").update(
        refused_since=timezone.now() - timedelta(minutes=11)
    )
    assert new_job(person_bytes, top_garment, resolution=1024).route == "dashscope:aitryon"  # a probe
    routing.success("dashscope:aitryon")
    assert not TryOnRoute.objects.get(name="dashscope:aitryon").refused_since


def test_queued_jobs_of_a_refused_route_move_at_admission(person_bytes, top_garment):
    job = new_job(person_bytes, top_garment)
    routing.refuse("dashscope:aitryon", "Arrearage", "account in arrears")
    admission.admit()
    job.refresh_from_db()
    assert job.route.startswith("dashscope-image-edit") and job.status == "submitting"
    assert job.history[-1]["outcome"] == "Arrearage"


def test_the_breaker_opens_after_repeated_outages_and_half_opens(dashscope, person_bytes, top_garment):
    dashscope.error("POST", SUBMIT_URL, 500, "InternalError")
    edit_ok(dashscope)
    with override_settings(TRYON={**CHAIN, "BREAKER_THRESHOLD": 2, "BREAKER_COOLDOWN": 60}):
        job = admit(new_job(person_bytes, top_garment))
        step(job)  # one outage: handed back to the queue on the same route
        job.refresh_from_db()
        assert job.status == "queued" and job.route == "dashscope:aitryon"
        TryOn.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
        step(admit(job))  # the second opens the breaker: the job goes to the next route
        job.refresh_from_db()
        assert job.route.startswith("dashscope-image-edit") and job.history[-1]["outcome"] == "BreakerOpen"
        assert not routing.usable(routes()[0])
        assert new_job(person_bytes, top_garment, resolution=1024).route.startswith("dashscope-image-edit")
        TryOnRoute.objects.filter(name="dashscope:aitryon").update(
            open_until=timezone.now() - timedelta(seconds=1)
        )
        assert routing.usable(routes()[0])  # half-open: the next job tries it


def test_a_final_error_that_is_not_a_refusal_does_not_fail_over(dashscope, person_bytes, top_garment):
    dashscope.error("POST", SUBMIT_URL, 400, "InvalidParameter", "bad photo")
    job = admit(new_job(person_bytes, top_garment))
    step(job)
    job.refresh_from_db()
    assert (job.status, job.route, job.error_code) == ("failed", "dashscope:aitryon", "InvalidParameter")
    assert not TryOnRoute.objects.filter(refused_since__isnull=False).exists()


def test_with_nowhere_to_go_the_job_fails_with_the_refusal(dashscope, person_bytes, top_garment):
    with override_settings(TRYON={**CHAIN, "BACKENDS": CHAIN["BACKENDS"][:1]}):
        dashscope.error("POST", SUBMIT_URL, 403, "Endpoint.AccessDenied")
        job = admit(new_job(person_bytes, top_garment))
        step(job)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ModelNotAvailable")


def test_the_admin_names_a_refused_route_and_since_when(client, django_user_model):
    routing.refuse("dashscope:aitryon", "ModelNotAvailable", "Workspace endpoint access denied.")
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    for url in ("/admin/django_tryon/tryon/", "/admin/django_tryon/tryon/dashboard/"):
        page = client.get(url).content.decode()
        assert "refuses the route dashscope:aitryon since" in page and "ModelNotAvailable" in page


def test_a_chain_of_only_retired_models_warns():
    retired = {
        "BACKENDS": [
            {
                "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
                "OPTIONS": {"api_key": "k", "model": "aitryon"},
            }
        ]
    }
    with override_settings(TRYON=retired):
        assert "django_tryon.W008" in [m.id for m in check_settings()]
    assert "django_tryon.W008" not in [m.id for m in check_settings()]  # the chain has a successor


def test_a_chain_entry_must_name_its_backend():
    with override_settings(TRYON={"BACKENDS": [{"OPTIONS": {}}]}):
        assert "django_tryon.E001" in [m.id for m in check_settings()]
    assert json.dumps(CHAIN)  # settings stay JSON (the worker tests pass them through the environment)


def test_every_refusal_has_a_message_for_the_shopper():
    """A job that fails on a refused route (nowhere left to go) says why in English and Chinese."""
    from django_tryon.messages import MESSAGES
    from django_tryon.routing import REFUSALS

    missing = sorted(code for code in REFUSALS if code not in MESSAGES)
    assert not missing
    assert all(all(MESSAGES[code]) for code in REFUSALS)


@pytest.mark.parametrize("trial", ["refusal due its recheck", "breaker past its cool-down"])
def test_a_route_on_trial_takes_one_job_at_a_time(person_bytes, top_garment, trial):
    """Ten shoppers arriving as a refused route is probed again (or a breaker half-opens) must not all be
    sent to it: one job tries; the others wait until the provider has answered it."""
    from unittest import mock

    with (
        override_settings(TRYON={**CHAIN, "MAX_QUEUED_PER_OWNER": None}),
        mock.patch("django_tryon.scheduling._send"),
    ):
        if trial.startswith("refusal"):
            routing.refuse("dashscope:aitryon", "ModelNotAvailable", "retired")
            TryOnRoute.objects.filter(name="dashscope:aitryon").update(
                refused_since=timezone.now() - timedelta(minutes=11)
            )
        else:
            TryOnRoute.objects.create(
                name="dashscope:aitryon", failures=3, open_until=timezone.now() - timedelta(seconds=1)
            )
        jobs = [
            services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
            for _ in range(4)
        ]
        assert {job.route for job in jobs} == {"dashscope:aitryon"}
        assert admission.admit() == 1
        assert admission.admit() == 0  # the probe is still out
        probe = TryOn.objects.get(status="submitting")
        routing.success("dashscope:aitryon")  # its answer closes the trial
        TryOn.objects.filter(pk=probe.pk).update(status="succeeded", finished_at=timezone.now())
        assert admission.admit() == 3  # the route's full concurrency again (5)
