"""The notification centre: each state change that concerns a user notifies its users, in
the transaction of the change; only the recipient reads or marks it; the outbox mails it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from market.extensions import db
from market.notifications.models import EmailOutbox, Notification
from tests.licenses_app.conftest import active_license, apply


def _mine(user_id: int) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.recipient_user_id == user_id)
            .order_by(Notification.id)
        )
    )


def _types(user_id: int) -> list[str]:
    return [n.type for n in _mine(user_id)]


def _api(client, party, **query):
    r = client.get("/api/v1/notifications", headers=party.headers, query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# ------------------------------------------------------------------------ who is told what


def test_invoice_and_settlement_notify_the_buyer_with_money_and_link(client, market):
    lic = active_license(client, market, amount=123_456)
    assert _types(market.buyer.user.id) == ["license.invoiced", "license.settled"]
    body = _api(client, market.buyer)
    assert body["total"] == 2 and body["unread"] == 2
    settled, invoiced = body["items"]  # newest first
    assert invoiced["type"] == "license.invoiced"
    assert invoiced["params"]["license_id"] == lic["id"]
    assert invoiced["message"].startswith(f"Invoice {invoiced['params']['invoice_number']} ")
    assert "¥1,234.56" in invoiced["message"]
    assert settled["message"] == f"The payment of ¥1,234.56 for license {lic['id']} was settled."
    assert settled["link"] == f"/licenses/{lic['id']}"
    # Nobody else in the market was told.
    assert _types(market.operator.user.id) == []


def test_messages_follow_the_callers_language(client, market):
    lic = active_license(client, market, amount=10_000)
    headers = {**market.buyer.headers, "Accept-Language": "zh"}
    items = client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    assert items[0]["message"] == f"许可 {lic['id']} 的 ¥100.00 付款已结算。"


def test_suspension_reinstatement_and_revocation_notify_the_buyer(client, market):
    lic = active_license(client, market)
    for path, who in (("suspend", market.regulator), ("reinstate", market.regulator),
                      ("revoke", market.operator)):
        r = client.post(f"/api/v1/licenses/{lic['id']}/{path}",
                        json={"reason": "test reason"}, headers=who.headers)
        assert r.status_code == 200, r.get_json()
    assert _types(market.buyer.user.id)[-3:] == [
        "license.suspended", "license.reinstated", "license.revoked"
    ]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_license_review_notifies_the_buyer(client, market, decision):
    dataset = market.dataset(grade="conditional")
    lic = apply(client, market, market.quote([(dataset, 50_000)])).get_json()
    assert lic["status"] == "pending_review"
    r = client.post(f"/api/v1/licenses/{lic['id']}/review",
                    json={"decision": decision, "comment": "ok"},
                    headers=market.operator.headers)
    assert r.status_code == 200, r.get_json()
    expected = "license.approved" if decision == "approve" else "license.rejected"
    assert expected in _types(market.buyer.user.id)


def test_every_user_of_the_recipient_org_is_told_and_reads_alone(client, market, make_user):
    colleague = make_user("buyer", org=market.buyer.org)
    active_license(client, market)
    assert _types(colleague.id) == ["license.invoiced", "license.settled"]
    first = _mine(market.buyer.user.id)[0]
    r = client.post(f"/api/v1/notifications/{first.id}/read", headers=market.buyer.headers)
    assert r.status_code == 200 and r.get_json()["read_at"]
    assert [n.read_at is None for n in _mine(colleague.id)] == [True, True]


def test_dataset_review_notifies_the_department(client, market):
    from market.accounts.actor import Actor
    from market.datasets import services
    from market.datasets.models import DatasetVersion

    department = market.department()
    dept_user = market.party("department", status="active")
    # The department user belongs to its own org; move it into this department for the test.
    dept_user.user.organization_id = department.id
    dataset = market.dataset(department, title="上海市企业登记")
    db.session.add(DatasetVersion(dataset_id=dataset.id, version=2, status="pending_review",
                                  filename="v2.csv"))
    db.session.flush()
    db.session.refresh(dataset)
    services.review(db.session, Actor.from_user(market.operator.user), dataset, "reject",
                    "re-upload with a header row")
    [n] = _mine(dept_user.user.id)
    assert n.type == "dataset.rejected"
    assert n.params["title"] == "上海市企业登记" and n.params["version"] == 2


def test_payout_notifies_the_department(client, market):
    from licenses import ledger
    from market.accounts.actor import Actor

    active_license(client, market, amount=100_000)
    from licenses.models import LicenseItem

    item = db.session.scalars(sa.select(LicenseItem).order_by(LicenseItem.id.desc())).first()
    department_id = item.dataset.department_id
    dept_user = market.party("department")
    dept_user.user.organization_id = department_id
    db.session.flush()
    owed = ledger.department_payable(db.session, department_id)
    assert owed > 0
    ledger.record_payout(db.session, Actor.from_user(market.operator.user), department_id,
                         owed, "BANK-PAYOUT-1")
    [n] = _mine(dept_user.user.id)
    assert n.type == "revenue.payout" and n.params == {"amount": owed,
                                                       "reference": "BANK-PAYOUT-1"}


def test_consent_requested_granted_revoked(client, world):
    buyer = world.party("buyer")
    subject = world.subject(0)
    lic = world.license(buyer)
    from tests.consents import data
    from tests.consents.conftest import future

    r = client.post("/api/v1/consents", headers=buyer.headers, json={
        "license_id": lic.id, "subject_credit_code": data.CODES[0],
        "purpose": "credit check", "valid_until": future(20)})
    assert r.status_code == 201, r.get_json()
    consent_id = r.get_json()["id"]
    [asked] = _mine(subject.user.id)
    assert asked.type == "consent.requested" and asked.params["consent_id"] == consent_id
    assert asked.params["buyer"] == buyer.org.name
    r = client.post(f"/api/v1/consents/{consent_id}/decision", headers=subject.headers,
                    json={"decision": "grant"})
    assert r.status_code == 200, r.get_json()
    r = client.post(f"/api/v1/consents/{consent_id}/revoke", headers=subject.headers)
    assert r.status_code == 200, r.get_json()
    assert _types(buyer.user.id) == ["consent.granted", "consent.revoked"]
    assert _types(subject.user.id) == ["consent.requested"]


def test_a_failed_change_leaves_no_notification(client, market):
    """The notification is in the change's transaction: a refused change writes none."""
    lic = active_license(client, market)
    before = len(_mine(market.buyer.user.id))
    r = client.post(f"/api/v1/licenses/{lic['id']}/reinstate", json={"reason": "x"},
                    headers=market.regulator.headers)  # not suspended: refused
    assert r.status_code == 409
    assert len(_mine(market.buyer.user.id)) == before


# ------------------------------------------------------------------ reading: object checks


def test_only_the_recipient_may_read_or_mark(client, market):
    active_license(client, market)
    theirs = _mine(market.buyer.user.id)[0]
    other_buyer = market.party("buyer")
    for party in (other_buyer, market.operator, market.regulator):
        r = client.post(f"/api/v1/notifications/{theirs.id}/read", headers=party.headers)
        assert r.status_code == 404, party
        assert _api(client, party)["total"] == 0
    db.session.refresh(theirs)
    assert theirs.read_at is None
    assert client.post(f"/api/v1/notifications/{theirs.id}/read").status_code == 401


def test_mark_all_read_and_unread_filter(client, market):
    active_license(client, market)
    assert _api(client, market.buyer, unread="true")["total"] == 2
    r = client.post("/api/v1/notifications/read-all", headers=market.buyer.headers)
    assert r.status_code == 200 and r.get_json()["unread"] == 0
    assert _api(client, market.buyer, unread="true")["total"] == 0
    assert _api(client, market.buyer)["total"] == 2


# ------------------------------------------------------------------------------ the pages


def _login(client, party) -> str:
    from tests.licenses_app.test_web import login

    return login(client, party)


def test_page_bell_and_marking_read(client, market):
    lic = active_license(client, market)
    token = _login(client, market.buyer)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="notify-count">2<' in html
    page = client.get("/notifications")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "付款已结算" in text and "全部标为已读" in text
    english = client.get("/notifications?lang=en").get_data(as_text=True)
    assert "was settled" in english and "Mark all read" in english
    first = _mine(market.buyer.user.id)[0]
    # Without the CSRF token nothing changes.
    r = client.post(f"/notifications/{first.id}/read", data={})
    db.session.refresh(first)
    assert first.read_at is None
    r = client.post(f"/notifications/{first.id}/read", data={"csrf_token": token, "open": "1"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/licenses/{lic['id']}")
    db.session.refresh(first)
    assert first.read_at is not None
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-testid="notify-count">1<' in html
    client.post("/notifications/read-all", data={"csrf_token": token})
    html = client.get("/dashboard").get_data(as_text=True)
    assert "notify-count" not in html


def test_page_refuses_someone_elses_notification(client, market):
    active_license(client, market)
    theirs = _mine(market.buyer.user.id)[0]
    intruder = market.party("buyer")
    token = _login(client, intruder)
    r = client.post(f"/notifications/{theirs.id}/read", data={"csrf_token": token})
    assert r.status_code == 404
    db.session.refresh(theirs)
    assert theirs.read_at is None


# ---------------------------------------------------------------------------- the outbox


class FakeSender:
    def __init__(self, fail: int = 0):
        self.fail = fail
        self.sent = []

    def send(self, mail):
        if self.fail:
            self.fail -= 1
            raise ConnectionRefusedError("smtp down")
        self.sent.append(mail)


def test_no_outbox_unless_the_setting_is_on(client, market, app):
    assert app.config["MARKET_NOTIFY_EMAIL"] is False
    active_license(client, market)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EmailOutbox)) == 0


@pytest.fixture
def email_on(app):
    app.config["MARKET_NOTIFY_EMAIL"] = True
    yield
    app.config["MARKET_NOTIFY_EMAIL"] = False


def test_outbox_delivers_and_retries_a_failure(client, market, email_on):
    from market.notifications.sender import deliver_outbox

    active_license(client, market, amount=10_000)
    rows = list(db.session.scalars(sa.select(EmailOutbox).order_by(EmailOutbox.id)))
    assert len(rows) == 2 and all(r.status == "pending" for r in rows)

    sender = FakeSender(fail=1)
    report = deliver_outbox(db.session, sender, commit=db.session.flush)
    assert (report.sent, report.failed) == (1, 1)
    for r in rows:
        db.session.refresh(r)
    failed, sent = rows
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == "ConnectionRefusedError: smtp down"
    assert sent.status == "sent" and sent.sent_at is not None
    assert sender.sent[0].to == market.buyer.user.email
    assert "已结算" in sender.sent[0].body  # mails are in Chinese

    report = deliver_outbox(db.session, sender, commit=db.session.flush)
    assert (report.sent, report.failed) == (1, 0)
    db.session.refresh(failed)
    assert failed.status == "sent" and failed.attempts == 2 and failed.last_error is None
    assert deliver_outbox(db.session, sender, commit=db.session.flush).sent == 0
    assert len(sender.sent) == 2


def test_cli_send_uses_the_configured_sender(client, market, email_on, runner, monkeypatch):
    from market.notifications import sender as sender_module

    active_license(client, market)
    fake = FakeSender()
    monkeypatch.setattr(sender_module, "default_sender", lambda: fake)
    result = runner.invoke(args=["notify", "send"])
    assert result.exit_code == 0, result.output
    assert "sent 2, failed 0" in result.output
    assert len(fake.sent) == 2

    active_license(client, market)
    monkeypatch.setattr(sender_module, "default_sender", lambda: FakeSender(fail=99))
    result = runner.invoke(args=["notify", "send"])
    assert result.exit_code == 1 and "sent 0, failed 2" in result.output
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(EmailOutbox).where(EmailOutbox.status == "pending")
    ) == 2


def test_smtp_sender_speaks_smtp(monkeypatch, app):
    """The SMTP sender builds the message and talks to smtplib as configured."""
    from market.notifications import sender as sender_module

    calls = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            calls.append(("connect", host, port))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def starttls(self):
            calls.append(("starttls",))

        def login(self, user, password):
            calls.append(("login", user))

        def send_message(self, message):
            calls.append(("send", message["To"], message["Subject"], message.get_content()))

    monkeypatch.setattr(sender_module.smtplib, "SMTP", FakeSMTP)
    config = {**app.config, "MARKET_SMTP_HOST": "mail.example.cn", "MARKET_SMTP_PORT": 587,
              "MARKET_SMTP_STARTTLS": True, "MARKET_SMTP_USER": "market",
              "MARKET_SMTP_PASSWORD": "pw", "MARKET_SMTP_FROM": "noreply@example.cn"}
    sender_module.SmtpSender(config).send(sender_module.Mail("a@b.cn", "主题", "正文"))
    assert calls == [("connect", "mail.example.cn", 587), ("starttls",), ("login", "market"),
                     ("send", "a@b.cn", "主题", "正文\n")]
