"""Fixtures for the licence app tests: datasets, quotes and parties made directly with the ORM
(the quotes and publication areas are built elsewhere), and the localstripe server of
``tests/licenses``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

# Re-exported so that pytest registers them for this folder too.
from tests.licenses.conftest import localstripe, webhook_receiver  # noqa: F401

WEBHOOK_SECRET = "whsec_licenses_app_test"
_serial = itertools.count(1)


@functools.cache
def _password_hash() -> str:
    from market.accounts.services import hash_password
    from tests.conftest import PASSWORD

    return hash_password(PASSWORD)


@dataclass
class Party:
    user: Any
    headers: dict[str, str]

    @property
    def org(self):
        return self.user.organization


@dataclass
class Market:
    """Builds rows for a test. ``buyer``, ``operator`` and ``regulator`` are made on first use."""

    make_org: Callable
    auth_header: Callable
    session: Any
    _parties: dict[str, Party] = field(default_factory=dict)

    def party(self, kind: str, status: str = "active") -> Party:
        """A user (password ``tests.conftest.PASSWORD``) in a new organization, with a token.

        The password hash is computed once per session: argon2 is slow on purpose.
        """
        from market.accounts.models import User

        org = self.make_org(kind, status=status)
        user = User(
            email=f"user{next(_serial)}@{kind}.licenses.example.cn",
            password_hash=_password_hash(),
            organization=org,
        )
        self.session.add(user)
        self.session.commit()
        return Party(user, self.auth_header(user))

    def _role(self, kind: str) -> Party:
        if kind not in self._parties:
            self._parties[kind] = self.party(kind)
        return self._parties[kind]

    @property
    def buyer(self) -> Party:
        return self._role("buyer")

    @property
    def operator(self) -> Party:
        return self._role("operator")

    @property
    def regulator(self) -> Party:
        return self._role("regulator")

    def department(self, name: str | None = None):
        return self.make_org("department", name=name)

    def dataset(
        self,
        department=None,
        *,
        grade: str = "open",
        columns: Sequence[str] = ("enterprise_key", "district", "industry", "revenue"),
        contributors: Sequence[tuple[Any, int]] = (),
        dp_budget: str | None = None,
        title: str | None = None,
    ):
        from decimal import Decimal

        from market.datasets.models import (
            Dataset,
            DatasetColumn,
            DatasetContributor,
            DatasetVersion,
        )

        department = department or self.department()
        n = next(_serial)
        dataset = Dataset(
            slug=f"d{n}_licenses_app",
            department_id=department.id,
            title=title or f"Dataset {n}",
            description="",
            category="enterprise",
            open_grade=grade,
            status="listed",
            dp_epsilon_budget=Decimal(dp_budget) if dp_budget else None,
        )
        self.session.add(dataset)
        self.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id, version=1, status="listed", filename="data.csv"
        )
        version.columns = [
            DatasetColumn(
                position=i,
                name=name,
                type="string",
                role="entity_key" if i == 0 else "dimension",
                treatment="pseudonymized" if i == 0 else "none",
            )
            for i, name in enumerate(columns)
        ]
        self.session.add(version)
        self.session.flush()
        dataset.current_version_id = version.id
        for org, weight in contributors:
            self.session.add(
                DatasetContributor(dataset_id=dataset.id, department_id=org.id, weight=weight)
            )
        self.session.commit()
        return dataset

    def quote(
        self,
        items: Sequence[tuple[Any, int] | tuple[Any, int, Sequence[str] | None]],
        *,
        buyer=None,
        purpose: str = "internal_risk_control",
        duration_months: int = 12,
        query_quota: int = 1000,
        total: int | None = None,
        expires_in: dt.timedelta = dt.timedelta(days=7),
    ):
        from market.quotes.models import Quote

        rows = []
        for entry in items:
            dataset, amount, *rest = entry
            rows.append(
                {
                    "dataset_id": dataset.id,
                    "dataset_version": 1,
                    "columns": list(rest[0]) if rest and rest[0] is not None else None,
                    "amount": amount,
                    "factors": {"base": str(amount)},
                }
            )
        buyer_org = buyer if buyer is not None else self.buyer.org
        quote = Quote(
            buyer_org_id=buyer_org.id,
            params_version=1,
            model_version="test",
            purpose=purpose,
            duration_months=duration_months,
            query_quota=query_quota,
            total_fen=sum(r["amount"] for r in rows) if total is None else total,
            currency="CNY",
            items=rows,
            document={"test": True},
            signature="x" * 86,
            key_id="0" * 16,
            expires_at=dt.datetime.now(dt.UTC) + expires_in,
        )
        self.session.add(quote)
        self.session.commit()
        return quote


@pytest.fixture
def market(app, make_org, auth_header) -> Market:
    from market.extensions import db

    market = Market(make_org, auth_header, db.session)
    market.operator  # noqa: B018  (the platform operator issues every license document)
    return market


def apply(client, market: Market, quote, statement: str = "SME credit risk scoring", party=None):
    party = party or market.buyer
    return client.post(
        "/api/v1/licenses",
        json={"quote_id": quote.id, "purpose_statement": statement},
        headers=party.headers,
    )


def active_license(client, market: Market, amount: int = 100_000, **quote_kw) -> dict:
    """A license paid by invoice and settled: (license JSON)."""
    dataset = market.dataset()
    quote = market.quote([(dataset, amount)], **quote_kw)
    lic = apply(client, market, quote).get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    r = client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "BANK-1"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    return client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()
