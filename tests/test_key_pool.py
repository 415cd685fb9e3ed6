"""KEY_POOL: several provider keys (accounts, regions) per route; jobs spread over them within each key's
own limits, and every step of a job uses the key it was admitted on."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import override_settings

from django_tryon import admission, services
from django_tryon.backends import get_backend
from django_tryon.models import TryOn

from . import images
from .conftest import BASE

pytestmark = pytest.mark.django_db
POOL = {
    "OPTIONS": {"base_url": BASE},  # no api_key here: the keys are only in the pool
    "KEY_POOL": [
        {"name": "hangzhou", "api_key": "sk-hz", "max_concurrency": 2},
        {
            "name": "singapore",
            "api_key": "sk-sg",
            "base_url": "https://dashscope-intl.test/api/v1",
            "max_concurrency": 1,
        },
    ],
    "PUBLIC_BASE_URL": "https://shop.test",
    "MAX_QUEUED": None,
    "MAX_QUEUED_PER_OWNER": None,
    "DAILY_BUDGET_AMOUNT": None,
}


@pytest.fixture(autouse=True)
def _pool():
    with override_settings(TRYON=POOL), mock.patch("django_tryon.scheduling._send"):
        yield


def test_a_route_whose_keys_are_only_in_the_pool_builds(person_bytes, top_garment):
    assert get_backend().options["api_key"] == "sk-hz"  # the first key, when none is named
    assert get_backend(key="singapore").options["base_url"] == "https://dashscope-intl.test/api/v1"
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    assert job.status == "queued"


def test_jobs_spread_over_the_keys_within_each_keys_limit(top_garment):
    jobs = [
        services.create_tryon(person_image=images.person_photo(), top_garment=top_garment, dispatch_now=False)
        for n in range(5)
    ]
    assert admission.admit() == 3  # 2 on hangzhou + 1 on singapore; the others wait
    admitted = TryOn.objects.filter(status="submitting")
    assert sorted(admitted.values_list("key_name", flat=True)) == ["hangzhou", "hangzhou", "singapore"]
    assert TryOn.objects.filter(status="queued").count() == 2
    first = admitted.get(key_name="singapore")
    from django_tryon.pipeline import backend_for

    backend = backend_for(first)  # every step of a job on the key it was admitted with
    assert (backend.options["api_key"], backend.options["base_url"]) == (
        "sk-sg",
        "https://dashscope-intl.test/api/v1",
    )
    assert len(jobs) == 5
