"""Agreement expiry without cron: the catalogue hides the datasets of an ended agreement at
read time, and the app sweeps ended agreements itself (first request, then a timer), once
even when several processes sweep at the same moment."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor
from market.agreements import services, sweeper
from market.agreements.models import Agreement
from market.audit.models import AuditEvent
from market.extensions import db
from tests.conftest import valid_uscc
from tests.licenses_app.conftest import apply


def _end_term(agreement: Agreement, ended: dt.datetime) -> None:
    """Move an agreement's term so that it ended at ``ended`` (the sweeper has not run)."""
    db.session.execute(
        sa.update(Agreement)
        .where(Agreement.id == agreement.id)
        .values(starts_at=ended - dt.timedelta(days=30), ends_at=ended)
    )
    db.session.commit()


def test_the_catalogue_hides_a_dataset_whose_agreement_ended_before_any_sweep(
    client, market, make_org, as_role
):
    dept = make_org("department", agreement=False)
    agreement = services.seed_default_agreement(db.session, dept)
    db.session.commit()
    dataset = market.dataset(dept, title="Ending soon")
    other = market.dataset(title="Still covered")  # another department, its own agreement
    quote = market.quote([(dataset, 50_000)])
    assert client.get(f"/api/v1/datasets/{dataset.id}").status_code == 200

    _end_term(agreement, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    # Nothing swept: the stored statuses still say active and listed...
    db.session.refresh(dataset)
    assert dataset.status == "listed" and agreement.status == "active"
    # ...yet every read already treats the dataset as delisted.
    ids = [d["id"] for d in client.get("/api/v1/datasets?per_page=100").get_json()["items"]]
    assert dataset.id not in ids and other.id in ids
    assert client.get(f"/api/v1/datasets/{dataset.id}").status_code == 404
    assert client.get(f"/datasets/{dataset.id}").status_code == 404
    assert "Ending soon" not in client.get("/catalog").get_data(as_text=True)
    assert f"/datasets/{dataset.id}" not in client.get("/api/v1/catalog.jsonld").get_data(
        as_text=True
    )
    r = client.post("/api/v1/quotes", json={"items": [{"dataset_id": dataset.id}]},
                    headers=market.buyer.headers)
    assert r.status_code == 422, r.get_json()
    r = apply(client, market, quote)  # a quote made before the end is no way around it
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "no_active_agreement"
    # Its department, the operator and the regulator still see it (to renew the agreement).
    _, reg = as_role("regulator")
    assert client.get(f"/api/v1/datasets/{dataset.id}", headers=reg).status_code == 200
    # The sweep then writes what the reads already showed, audited.
    assert [a.id for a in services.expire_agreements(db.session, Actor.system("t"))] == [
        agreement.id
    ]
    db.session.commit()
    db.session.refresh(dataset)
    assert dataset.status == services.DELISTED
    assert services.lapsed_dataset_ids(db.session) == set()


def test_another_agreement_in_force_keeps_the_dataset_listed(client, market, make_org):
    dept = make_org("department", agreement=False)
    ending = services.seed_default_agreement(db.session, dept)
    services.seed_default_agreement(db.session, dept, categories=["enterprise"])
    db.session.commit()
    dataset = market.dataset(dept)
    _end_term(ending, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert client.get(f"/api/v1/datasets/{dataset.id}").status_code == 200
    assert services.lapsed_dataset_ids(db.session) == set()


# ----------------------------------------------------------------- the sweeper, real commits


def _setup(app, ends_at: dt.datetime) -> tuple[int, int, str]:
    """A department with one listed dataset under an agreement ending at ``ends_at``
    (committed); returns (agreement id, dataset id, agreement number)."""
    from market.accounts import services as accounts
    from market.datasets.models import Dataset, DatasetVersion

    with app.app_context():
        system = Actor.system("test")
        accounts.create_organization(
            db.session, system, name="operator", kind="operator",
            credit_code=valid_uscc(1), check=False,
        )
        dept = accounts.create_organization(
            db.session, system, name="dept", kind="department",
            credit_code=valid_uscc(2), check=False,
        )
        agreement = services.seed_default_agreement(
            db.session, dept, starts_at=ends_at - dt.timedelta(days=365), years=1
        )
        dataset = Dataset(
            slug="d_sweep", department_id=dept.id, title="Swept", description="",
            category="enterprise", open_grade="open", status="listed",
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id, version=1, status="listed", filename="data.csv"
        )
        db.session.add(version)
        db.session.flush()
        dataset.current_version_id = version.id
        db.session.commit()
        out = (agreement.id, dataset.id, agreement.number)
        db.session.remove()
        return out


def _events(app, type_: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)))
        db.session.remove()
        return rows


def test_two_sweepers_at_once_expire_each_agreement_once(live_app, monkeypatch):
    from market.audit.services import verify_chain
    from market.datasets.models import Dataset
    from market.keys import public_keys

    now = dt.datetime.now(dt.UTC)
    agreement_id, dataset_id, number = _setup(live_app, now - dt.timedelta(minutes=5))
    # Both sweepers have read the work list before either claims anything: the race is real.
    barrier = threading.Barrier(2, timeout=30)
    real = services.expire_agreement

    def racing(session, actor, agreement_id, at):
        barrier.wait()
        return real(session, actor, agreement_id, at)

    monkeypatch.setattr(services, "expire_agreement", racing)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with live_app.app_context():
                results.append(sweeper.sweep(live_app))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == [[], [number]]  # one sweeper won, the other wrote nothing
    assert len(_events(live_app, "agreement.expired")) == 1
    assert [e.subject_id for e in _events(live_app, "dataset.delisted")] == [str(dataset_id)]
    monkeypatch.setattr(services, "expire_agreement", real)
    with live_app.app_context():
        assert db.session.get(Dataset, dataset_id).status == services.DELISTED
        assert db.session.get(Agreement, agreement_id).status == "expired"
        assert verify_chain(db.session, public_keys()).valid
        db.session.remove()  # (SQLite: our read transaction holds the write lock)
        # Idempotent: a later sweep finds nothing to do.
        assert sweeper.sweep(live_app) == []
        db.session.remove()


def test_the_app_sweeps_at_its_first_request_and_on_a_timer(live_app):
    now = dt.datetime.now(dt.UTC)
    ended_id, _, _ = _setup(live_app, now - dt.timedelta(minutes=5))
    with live_app.app_context():
        from market.accounts.models import Organization

        dept = db.session.scalar(sa.select(Organization).where(Organization.name == "dept"))
        soon = services.seed_default_agreement(
            db.session, dept, starts_at=now - dt.timedelta(days=1), years=1
        )
        soon.ends_at = now + dt.timedelta(seconds=2)
        db.session.commit()
        soon_id = soon.id
        db.session.remove()
    live_app.config.update(MARKET_AGREEMENT_SWEEP_THREAD=True, MARKET_AGREEMENT_SWEEP_SECONDS=0.3)

    def status(agreement_id: int) -> str:
        with live_app.app_context():
            value = db.session.get(Agreement, agreement_id).status
            db.session.remove()
            return value

    try:
        assert status(ended_id) == "active"  # nothing runs before the first request
        live_app.test_client().get("/api/v1/health")
        deadline = time.monotonic() + 30
        while status(ended_id) != "expired" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(ended_id) == "expired"  # swept at the first request
        assert status(soon_id) == "active"
        while status(soon_id) != "expired" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(soon_id) == "expired"  # and again by the timer, once its term ended
    finally:
        sweeper.stop_sweepers()
    assert len(_events(live_app, "agreement.expired")) == 2


@pytest.mark.parametrize("testing_only", [True])
def test_no_timer_under_testing_unless_asked(app, testing_only):
    # The test app never starts the thread by itself (tests sweep explicitly).
    assert app.testing is testing_only
    assert sweeper.start_sweeper(app) is False
