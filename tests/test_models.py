"""The job state machine and the models."""

from __future__ import annotations

import pytest
from django.utils import timezone

from django_tryon import services
from django_tryon.models import TERMINAL_STATUSES, TRANSITIONS, Garment, TryOn, get_product_model
from django_tryon.owners import Owner

pytestmark = pytest.mark.django_db

ALL = [s for s, _ in TryOn.Status.choices]


@pytest.fixture
def job(person_bytes, top_garment):
    return services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)


def test_every_status_has_a_transition_row():
    assert set(TRANSITIONS) == set(ALL)
    assert all(target in ALL for targets in TRANSITIONS.values() for target in targets)


def test_happy_path(job):
    for source, target in (
        ("queued", "submitting"),
        ("submitting", "submitted"),
        ("submitted", "running"),
        ("running", "succeeded"),
    ):
        assert TryOn.objects.transition(job.pk, [source], target)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.finished_at is not None and job.is_terminal


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_terminal_states_are_final(job, terminal):
    TryOn.objects.filter(pk=job.pk).update(status=terminal)
    for target in ("submitting", "submitted", "running", "succeeded", "failed", "canceled"):
        sources = [s for s in ALL if target in TRANSITIONS[s]]
        assert not TryOn.objects.transition(
            job.pk, [s for s in sources if s not in TERMINAL_STATUSES], target
        )
    assert TryOn.objects.get(pk=job.pk).status == terminal


def test_guard_refuses_a_wrong_source(job):
    assert not TryOn.objects.transition(job.pk, ["submitting"], "submitted")
    assert TryOn.objects.get(pk=job.pk).status == "queued"


@pytest.mark.parametrize(
    "source, target",
    [("queued", "submitted"), ("succeeded", "queued"), ("queued", "running"), ("running", "submitting")],
)
def test_disallowed_moves_are_programming_errors(job, source, target):
    with pytest.raises(ValueError):
        TryOn.objects.transition(job.pk, [source], target)


def test_querysets(job, django_user_model):
    assert list(TryOn.objects.unfinished()) == [job] and not TryOn.objects.active().exists()
    TryOn.objects.filter(pk=job.pk).update(status="running")
    assert list(TryOn.objects.active()) == [job]
    TryOn.objects.filter(pk=job.pk).update(remote_ended_at=timezone.now())  # the provider's slot is free
    assert not TryOn.objects.active().exists()
    user = django_user_model.objects.create(username="u")
    TryOn.objects.filter(pk=job.pk).update(user=user)
    assert list(Owner.of(user).scope(TryOn.objects.all())) == [job]
    assert not Owner.of(owner_key="x").scope(TryOn.objects.all()).exists()
    assert not Owner().scope(TryOn.objects.all()).exists()


def test_indexes_are_named():
    names = {index.name for index in TryOn._meta.indexes}
    assert {
        "tryon_status_created_idx",
        "tryon_status_updated_idx",
        "tryon_user_created_idx",
        "tryon_remote_id_idx",
    } <= names


def test_product_model_setting():
    assert get_product_model()._meta.label == "testapp.Product"
    assert get_product_model()._meta.get_field("tryon_garments").related_model is Garment
