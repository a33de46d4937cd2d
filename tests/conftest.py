"""Fixtures: ``app``, ``client``, ``runner`` and factories, on SQLite or PostgreSQL.

The backend is chosen by ``MARKET_TEST_DB`` (``sqlite`` by default, or ``postgres``). Each
test runs inside an outer transaction that is rolled back; the app's session joins it with
``join_transaction_mode="create_savepoint"``, so the request boundary's commits stay inside.
Tests that need real commits across threads use ``live_app``, which gets its own database.

In the PostgreSQL run, tests that never touch the database are deselected: they already ran
in the SQLite run and would prove nothing new.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy.orm import scoped_session, sessionmaker

from tests import pg

# Property tests: CI replays the same examples on every run (a red run comes from a change, not
# from the dice) and .ci/run selects that profile; local runs explore new examples, and a
# failure they find is kept as an explicit @example once fixed.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("dev", print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BACKEND = os.environ.get("MARKET_TEST_DB", "sqlite")
#: (``live`` and ``demo_database``: the end-to-end suite's server and ``make demo``, tests/e2e.)
DB_FIXTURES = {"app", "live_app", "database_url", "client", "runner", "live", "demo_database",
               "migrated_template"}

#: Fixed test secrets so that failures are reproducible; never used outside tests.
TEST_SECRETS = {
    "MARKET_SECRET_KEY": "test-secret-key-not-for-production",
    "MARKET_PSEUDONYM_KEY": "test-pseudonym-key-not-for-production",
    "MARKET_SIGNING_KEY": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
}


def pytest_configure(config):
    from market.translations.sync import MO, compile_mo

    if not MO.exists():  # `make test` compiles it; a bare `pytest` should work too
        compile_mo()


def pytest_report_header(config):
    return f"market: database backend = {BACKEND}"


#: Seconds each slow module took in a measured ``make test`` pass (tests/module_durations.json).
MODULE_SECONDS: dict[str, float] = json.loads(
    (Path(__file__).with_name("module_durations.json")).read_text()
)


def pytest_collection_modifyitems(config, items):
    if BACKEND == "postgres":
        keep, drop = [], []
        for item in items:
            (keep if DB_FIXTURES & set(getattr(item, "fixturenames", ())) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    # Longest modules first (each module stays whole and in order): ``--dist loadscope`` hands
    # modules to the two workers in this order, so the long ones (Spark, the fuzzing, the
    # servers) start at once instead of ending the run on one worker while the other idles.
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.nodeid.split("::", 1)[0], 0.0))


def _new_database_url(tmp_path_factory, label: str) -> tuple[str, Callable[[], None]]:
    if BACKEND == "postgres":
        if not pg.available():
            pytest.fail(f"PostgreSQL is not reachable at {pg.base_url()} (MARKET_TEST_DB=postgres)")
        url = pg.create_database()
        return url, lambda: pg.drop_database(url)
    path = tmp_path_factory.mktemp(label) / "market.db"
    return f"sqlite:///{path}", lambda: None


def _clone_database_url(tmp_path_factory, template_url: str, label: str) -> tuple[str, Callable[[], None]]:
    """A new database with the contents of ``template_url`` (which nothing may be connected to):
    PostgreSQL's ``CREATE DATABASE … TEMPLATE``, or SQLite's online backup into a new file."""
    if BACKEND == "postgres":
        from sqlalchemy.engine import make_url

        url = pg.create_database(template=make_url(template_url).database)
        return url, lambda: pg.drop_database(url)
    import sqlite3

    path = tmp_path_factory.mktemp(label) / "market.db"
    source = sqlite3.connect(template_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return f"sqlite:///{path}", lambda: None


def make_test_app(database_url: str, instance: Path, **extra):
    from market import create_app

    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(instance),
        "MARKET_DATA_DIR": str(instance / "data"),
        # Initialized (so a test can switch it on with `rate_limits`), then switched off.
        "RATELIMIT_ENABLED": True,
        "SESSION_COOKIE_SECURE": False,
        "SERVER_NAME": None,
        # Background jobs run inline so that a test sees their result deterministically.
        "MARKET_JOB_RUNNER": "inline",
        # argon2 at minimal cost in this process (production's parameters are checked in
        # tests/accounts/test_password_hashing.py); servers run as subprocesses keep theirs.
        "MARKET_TEST_CHEAP_PASSWORD_HASHING": True,
        **TEST_SECRETS,
        **extra,
    }
    app = create_app(config)
    from market.extensions import limiter

    limiter.enabled = False
    return app


def migrate_to_head(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    url, cleanup = _new_database_url(tmp_path_factory, "db")
    yield url
    cleanup()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Iterator[str]:
    """A database migrated to head once per worker, never used directly: ``live_app`` and the
    browser servers start from copies of it instead of running every migration again."""
    url, cleanup = _new_database_url(tmp_path_factory, "template")
    app = make_test_app(url, tmp_path_factory.mktemp("template-instance"))
    migrate_to_head(app)
    from market.extensions import db

    with app.app_context():
        db.engine.dispose()
    yield url
    cleanup()


@pytest.fixture(scope="session")
def _session_app(database_url, tmp_path_factory):
    app = make_test_app(database_url, tmp_path_factory.mktemp("instance"))
    migrate_to_head(app)
    yield app
    from market.extensions import db

    with app.app_context():
        db.engine.dispose()


class FreshRequestClient(FlaskClient):
    """Each request starts with an empty ``g``, as it would in production.

    The ``app`` fixture keeps one app context pushed for the whole test (so that tests can use
    the session directly), and Flask reuses a pushed context for requests; without this, one
    request's ``g`` (the caller, the cached CSRF token) would leak into the next.
    """

    #: Tests read English messages unless they ask for another language: the app negotiates
    #: the API's language from Accept-Language (Chinese when none is sent), and the zh tests
    #: send ``Accept-Language: zh``. Only requests that send no such header get this one.
    default_language = "en"

    def open(self, *args, **kwargs):
        if has_app_context():
            g.__dict__.clear()
        headers = kwargs.get("headers")
        if headers is None or not any(k.lower() == "accept-language" for k in dict(headers)):
            headers = dict(headers or {})
            headers.setdefault("Accept-Language", self.default_language)
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


@contextmanager
def _session_on(conn) -> Iterator[None]:
    """``db.session`` bound to ``conn``: its commits become savepoints released inside the
    connection's transaction, which the caller rolls back."""
    from market.extensions import db

    original = db.session
    db.session = scoped_session(
        sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=True)
    )
    try:
        yield
    finally:
        db.session.remove()
        db.session = original


@pytest.fixture(scope="module")
def module_transaction(_session_app) -> Iterator[Any]:
    """One connection and transaction for a whole module, rolled back at its end: data built
    once for the module (``module_data``) is committed into it, and each test of the module
    (through ``app``) runs in a savepoint of it that is rolled back after the test, so a test
    sees the module's data exactly as built and never another test's changes."""
    from market.extensions import db

    with _session_app.app_context():
        conn = db.engine.connect()
        outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


def module_data(build: Callable[[Any], Any]) -> Callable[..., Any]:
    """A module-scoped fixture whose value ``build(app)`` is made once per module, with
    ``db.session`` on the ``module_transaction`` (commits stay inside it). Only for data the
    module's tests treat as read-only or change solely in the database (every test's database
    changes are rolled back; files and other state outside the database are not)."""

    @pytest.fixture(scope="module")
    def fixture(_session_app, module_transaction):
        with _session_app.app_context(), _session_on(module_transaction):
            return build(_session_app)

    return fixture


@pytest.fixture
def app(_session_app, request):
    """The app, inside an app context, with every database change rolled back after the test.

    In a module that shares data through ``module_transaction`` (it must then be marked
    ``pytest.mark.module_transaction``, since on SQLite a second transaction would wait for the
    module's write lock), the test runs in a savepoint of the module's transaction instead."""
    from market.extensions import db

    app = _session_app
    app.test_client_class = FreshRequestClient
    with app.app_context():
        if "module_transaction" in request.fixturenames or request.node.get_closest_marker(
            "module_transaction"
        ):
            conn = request.getfixturevalue("module_transaction")
            outer = conn.begin_nested()
            own = False
        else:
            conn = db.engine.connect()
            outer = conn.begin()
            own = True
        try:
            with _session_on(conn):
                yield app
        finally:
            outer.rollback()
            if own:
                conn.close()


@pytest.fixture
def live_app(tmp_path_factory, tmp_path, migrated_template):
    """An app on a database of its own (a copy of the migrated template), with real commits:
    for concurrency tests."""
    url, cleanup = _clone_database_url(tmp_path_factory, migrated_template, "livedb")
    app = make_test_app(url, tmp_path / "instance")
    yield app
    from market.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    cleanup()


@pytest.fixture
def rate_limits(app):
    """Switch the rate limiter on for one test, with empty counters before and after."""
    from market.extensions import limiter

    limiter.reset()
    limiter.enabled = True
    try:
        yield limiter
    finally:
        limiter.enabled = False
        limiter.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db_session(app):
    from market.extensions import db

    return db.session


# ---------------------------------------------------------------- factories

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def valid_uscc(n: int, prefix: str = "91310000") -> str:
    from market.idcodes import uscc_check_char

    body = (prefix + f"{n:09d}")[:17]
    return body + uscc_check_char(body)


@pytest.fixture
def make_org(app) -> Callable:
    """``make_org(kind, name=None, status="active", agreement=True)`` → Organization (a
    department gets an active default authorization agreement unless ``agreement=False``)."""
    from market.accounts import services
    from market.accounts.actor import Actor
    from market.extensions import db

    def make(kind: str, name: str | None = None, status: str = "active", agreement: bool = True):
        n = _next()
        org = services.create_organization(
            db.session,
            Actor.system("test"),
            name=name or f"{kind}-org-{n}",
            kind=kind,
            credit_code=valid_uscc(n + 1000),
            status=status,
            check=False,
        )
        if kind == "department" and agreement:
            # Listing needs an authorization agreement (授权运营协议): a test department has
            # the demo's default one over all its data unless a test says otherwise.
            from market.agreements.services import seed_default_agreement

            seed_default_agreement(db.session, org)
        db.session.commit()
        return org

    return make


PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_user(app, make_org) -> Callable:
    """``make_user(kind="buyer", org=None, email=None)`` → User (password ``PASSWORD``)."""
    from market.accounts import services
    from market.accounts.actor import Actor
    from market.extensions import db

    def make(kind: str = "buyer", org=None, email: str | None = None, status: str = "active"):
        org = org or make_org(kind, status=status)
        user = services.create_user(
            db.session,
            Actor.system("test"),
            email=email or f"user{_next()}@{org.kind}.example.cn",
            password=PASSWORD,
            organization_id=org.id,
            check=False,
        )
        db.session.commit()
        return user

    return make


@pytest.fixture
def auth_header(app) -> Callable:
    """``auth_header(user)`` → ``{"Authorization": "Bearer …"}`` with a fresh token."""
    import datetime as dt

    from market.accounts import services
    from market.extensions import db

    def make(user) -> dict[str, str]:
        token, _ = services.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def as_role(make_user, auth_header) -> Callable:
    """``as_role("operator")`` → (user, headers)."""

    def make(kind: str, **kw):
        user = make_user(kind, **kw)
        return user, auth_header(user)

    return make


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests leave artefacts for review (screenshots): ``test-output/``."""
    path = Path(os.environ.get("MARKET_TEST_OUTPUT", Path(__file__).resolve().parent.parent / "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path
