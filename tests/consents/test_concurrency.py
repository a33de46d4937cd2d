"""Concurrent lookups never overspend a license's quota (real commits, threads; both DBs)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import sqlalchemy as sa

from tests.consents import data
from tests.consents.conftest import make_user

THREADS = 10
QUOTA = 4


def test_concurrent_lookups_never_overspend_the_quota(live_app):
    from licenses.models import License
    from market.accounts import services as accounts
    from market.consents.models import Lookup
    from market.extensions import db
    from market.keys import pseudonym_key

    with live_app.app_context():
        data_dir = Path(live_app.config["MARKET_DATA_DIR"])
        buyer_org = data.org(db.session, "buyer")
        users = [make_user(db.session, buyer_org) for _ in range(THREADS)]
        tables = [data.dataset(db.session, data_dir, name, pseudonym_key())
                  for name in ("tax", "hrss")]
        lic = data.license_for(
            db.session, buyer_org.id, [(t, data.LICENSED[n]) for t, n in zip(tables, ("tax", "hrss"),
                                                                           strict=True)],
            quota=QUOTA,
        )
        data.consent(db.session, lic, data.CODES[0])
        headers = [
            {"Authorization": "Bearer "
             + accounts.issue_token(db.session, u, dt.timedelta(hours=1))[0]}
            for u in users
        ]
        db.session.commit()
        license_id = lic.id
        db.session.remove()

    barrier = threading.Barrier(THREADS)
    codes: list[int] = []
    lock = threading.Lock()

    def worker(h):
        client = live_app.test_client()
        barrier.wait()
        r = client.post(
            "/api/v1/lookups",
            json={"license_id": license_id, "subject_credit_code": data.CODES[0]},
            headers=h,
        )
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(codes) == [200] * QUOTA + [429] * (THREADS - QUOTA)
    with live_app.app_context():
        left = db.session.scalar(sa.select(License.quota_remaining).where(License.id == license_id))
        made = db.session.scalar(sa.select(sa.func.count()).select_from(Lookup))
        db.session.remove()
    assert left == 0 and made == QUOTA
