"""An attacker bank with the source code, over the wire (gunicorn, its own database), against a
conditional dataset with the DEFAULT privacy settings (epsilon 0.5 per question, 5 per buyer
organization, 20 per version, delta 1e-6). Run with ``MARKET_TEST_DB=postgres`` too.

The target is the only enterprise of its (district, industry) cell: 12 monthly rows, 36,000 a
year. The bank runs the issue's attacks until its budget is spent: differencing totals with and
without the target's cell, a CASE grouping padded with the target, many distinct but equivalent
questions to average, and repeated questions. Every assertion is about what the system allows
(how many releases, which are cached and identical, which are refused, the noise scales the
answers carry), never about a lucky draw: from the number of releases and their scales the test
derives the smallest standard deviation ANY unbiased estimate of the target can have, and shows
it is far above a 10% error. The only probabilistic step is a group of one enterprise passing
the noisy threshold (probability about delta = 1e-6).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import requests

from tests.conftest import TEST_SECRETS
from tests.e2e.harness import free_port, stop, wait_http
from tests.sandbox_app import data

ROOT = Path(__file__).resolve().parents[2]
TARGET = data.TARGET_MONTHLY * 12
D, IND = data.TARGET_DISTRICT, data.TARGET_INDUSTRY
LN20 = math.log(20)  # a Laplace release's 95% half-width is scale * ln(1 / 0.05)


def _seed(app) -> dict:
    """The tax dataset with default privacy; bank A (two licenses), bank B; committed."""
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.extensions import db

    with app.app_context():
        ds = data.dataset(
            db.session, app.config["MARKET_DATA_DIR"], "tax", dp_budget=None, version_budget=None
        )
        out: dict = {"dataset_id": ds.id}
        for name, n_licenses in (("a", 2), ("b", 1)):
            org = data.org(db.session, "buyer")
            user = accounts.create_user(
                db.session, Actor.system("test"),
                email=f"attacker-{name}{org.id}@buyer.sandbox.example.cn",
                password="long-password-1", organization_id=org.id, check=False,
            )
            out[name] = {
                "licenses": [
                    data.license_for(db.session, org.id, [(ds, None)], quota=500).id
                    for _ in range(n_licenses)
                ],
                "token": accounts.issue_token(db.session, user, dt.timedelta(hours=2))[0],
            }
        db.session.commit()
        return out


class Bank:
    def __init__(self, base: str, token: str, licenses: list[int]):
        self.base, self.licenses = base, licenses
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}", "Accept-Language": "en"})

    def ask(self, sql: str, lic: int | None = None) -> tuple[int, dict]:
        r = self.http.post(
            f"{self.base}/api/v1/sandbox/{lic or self.licenses[0]}/queries",
            json={"sql": sql}, timeout=120,
        )
        return r.status_code, r.json()

    def cost(self, sql: str) -> dict:
        r = self.http.post(
            f"{self.base}/api/v1/sandbox/{self.licenses[0]}/queries/cost",
            json={"sql": sql}, timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()


def _scale(body: dict, col: int = 0) -> float:
    """The Laplace scale of a released SUM column, from its published 95% error bound."""
    bound = body["privacy"]["error_bounds"][col]
    assert bound["kind"] == "sum"
    return float(bound["half_width"]) / LN20


def _start(app, tmp_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "MARKET_DATA_DIR": app.config["MARKET_DATA_DIR"],
        "SESSION_COOKIE_SECURE": False,
        "MARKET_JOB_RUNNER": "inline",
        "MARKET_SANDBOX_WORKERS": 2,
        **TEST_SECRETS,
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SBX_SLOW_CONFIG": json.dumps(config),
        "SBX_SLOW_SECONDS": "0",  # the seam only checks that no transaction is open
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4",
             "--timeout", "120", "--graceful-timeout", "2", "-b", f"127.0.0.1:{port}",
             "tests.sandbox_app.slow_server:create()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", proc, log, timeout=120)
    return proc, base


def test_an_attacker_bank_with_the_default_budget_recovers_no_enterprise(live_app, tmp_path):
    seeded = _seed(live_app)
    proc, base = _start(live_app, tmp_path)
    try:
        _attack(base, seeded)
    finally:
        stop(proc)
        from sandbox import app_engine

        app_engine.close_engine(live_app)


def _attack(base: str, seeded: dict) -> None:
    a = Bank(base, seeded["a"]["token"], seeded["a"]["licenses"])
    b = Bank(base, seeded["b"]["token"], seeded["b"]["licenses"])
    with_target = f"SELECT SUM(tax) AS t FROM tax WHERE district = '{D}'"

    # The defaults, as the bank sees them before spending anything.
    [budget] = a.cost(with_target)["budgets"]
    assert (budget["epsilon_per_query"], budget["epsilon_budget"], budget["version_budget"]) == (
        "0.5000", "5.0000", "20.0000",
    )
    per_query = Decimal(budget["epsilon_per_query"])
    org_releases = int(Decimal(budget["epsilon_budget"]) / per_query)  # 10
    version_releases = int(Decimal(budget["version_budget"]) / per_query)  # 40
    new_answers: list[dict] = []

    def new(bank: Bank, sql: str) -> dict:
        status, body = bank.ask(sql)
        assert status == 200, body
        assert body["cached"] is False and body["epsilon_spent"] == "0.5000"
        new_answers.append(body)
        return body

    # 1. A group below the threshold and an absent group: the same answer, byte for byte but
    #    for ids, timings and balances (no count of withheld groups, one fixed sentence).
    small = new(a, f"SELECT district, COUNT(*) AS n FROM tax WHERE industry = '{IND}' "
                   "GROUP BY district")
    absent = new(a, "SELECT district, COUNT(*) AS n FROM tax WHERE industry = 'quarrying' "
                    "GROUP BY district")
    volatile = {"id", "elapsed_ms", "quota_remaining", "privacy_budget_remaining"}
    balances = {"budget_remaining", "budgets"}

    def shape(body: dict) -> dict:
        out = {k: v for k, v in body.items() if k not in volatile}
        out["privacy"] = {k: v for k, v in body["privacy"].items() if k not in balances}
        return out

    assert small["rows"] == [] and "suppressed_groups" not in small
    assert shape(small) == shape(absent)
    # Big groups (150 enterprises) are released at the default settings.
    districts = new(a, "SELECT district, COUNT(*) AS n FROM tax GROUP BY district")
    assert sorted(r[0] for r in districts["rows"]) == sorted(data.TAX_DISTRICTS)

    # 2. Differencing: the district's total with and without the target's cell.
    with_body = new(a, with_target)
    without_body = new(
        a, f"SELECT SUM(tax) AS t FROM tax WHERE district = '{D}' AND industry <> '{IND}'"
    )
    scales = [_scale(with_body), _scale(without_body)]

    # 3. Padding: a CASE group holding the target and a whole district, against the district.
    padded = f"CASE WHEN district = '{D}' AND industry = '{IND}' OR district = '徐汇' THEN 'x' " \
             "ELSE 'y' END"
    for sql in (
        f"SELECT {padded} AS g, SUM(tax) AS t FROM tax GROUP BY 1",
        "SELECT CASE WHEN district = '徐汇' THEN 'x' ELSE 'y' END AS g, SUM(tax) AS t "
        "FROM tax GROUP BY 1",
    ):
        status, body = a.ask(sql)
        if status == 200:  # allowed, and then a charged, noisy release like any other
            assert body["cached"] is False
            new_answers.append(body)
            scales.append(_scale(body, 1))
        else:
            assert status == 422 and body["errors"]["rule"]

    # 4. Averaging: distinct questions that all mean "the district's total", until refused.
    refused = None
    for i in range(2 * org_releases):
        status, body = a.ask(f"{with_target} AND industry <> 'none{i}'")
        if status != 200:
            refused = (status, body)
            break
        assert body["cached"] is False
        new_answers.append(body)
        scales.append(_scale(body))
    assert refused is not None and refused[0] == 429
    assert refused[1]["errors"]["rule"] == "privacy_budget_exhausted"
    assert len(new_answers) == org_releases  # the budget bought exactly ten releases
    # The bank's other license shares the organization's budget.
    status, body = a.ask(f"{with_target} AND industry <> 'other-license'", a.licenses[1])
    assert (status, body["errors"]["rule"]) == (429, "privacy_budget_exhausted")

    # 5. Repeats and respellings are the stored release: identical, free, even now.
    for sql in (with_target, f"select sum(t.tax) as total from tax t where t.district='{D}'"):
        for lic in a.licenses:
            status, body = a.ask(sql, lic)
            assert status == 200 and body["cached"] is True and body["epsilon_spent"] == "0.0000"
            assert body["rows"] == with_body["rows"]
    # Another bank asking the same question gets the same stored answer, free.
    status, body = b.ask(with_target)
    assert status == 200 and body["cached"] is True and body["rows"] == with_body["rows"]

    # What the bank can learn at best. Each release it holds is the exact (bounded) value plus
    # independent Laplace noise of scale >= s_min (variance 2 s^2). Whatever combination of its
    # k releases "with" and l releases "without" the target it uses (k + l <= releases it got),
    # an unbiased estimate of the target has variance >= 2 s^2 (1/k + 1/l) >= 8 s^2 / n.
    s_min = min(scales)
    n = len(new_answers)
    std_bank = math.sqrt(8 * s_min**2 / n)
    assert std_bank > 20 * 0.1 * TARGET  # the 10% margin is a twentieth of one std or less
    # All banks together: at most version_budget / epsilon_per_query releases of the version.
    std_pooled = math.sqrt(8 * s_min**2 / version_releases)
    assert std_pooled > 10 * 0.1 * TARGET
