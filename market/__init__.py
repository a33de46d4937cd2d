"""The public-data marketplace (公共数据授权运营): app factory.

Importing this package has no side effects: no connections, no files, no keys. Everything is
bound in :func:`create_app`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides environment settings (tests use it)."""
    # Flask is imported here, not at module level, so that the pure modules in this package
    # (market.crypto, market.idcodes, market.pipeline) load without it.
    from flask import Flask
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("MARKET_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
    )
    from market.config import build_config

    app.config.update(build_config(Path(app.instance_path), config))
    from market.accounts.services import use_cheap_password_hashing_if_testing

    use_cheap_password_hashing_if_testing(app.config)

    from market import database, errors, web
    from market.auth import init_auth
    from market.extensions import api, babel, csrf, db, limiter, migrate, select_locale
    from market.keys import init_keys

    db.init_app(app)
    with app.app_context():
        database.configure_engine(db.engine, app.config["MARKET_DB_PING_IDLE_S"])
    migrations_dir = Path(__file__).resolve().parent.parent / "migrations"
    migrate.init_app(app, db, directory=str(migrations_dir), render_as_batch=True, compare_type=True)
    babel.init_app(app, locale_selector=select_locale, default_timezone="Asia/Shanghai")
    csrf.init_app(app)
    limiter.init_app(app)
    from market.ratelimit import install as one_trip_rate_limits

    one_trip_rate_limits(limiter)  # one Redis round trip per limited request (issue 14)
    init_keys(app)
    init_auth(app)

    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearerAuth": []}]})
    api.ma_plugin.converter.add_attribute_function(_decimal_strings)
    from importlib import import_module

    from market.blueprints import API_MODULES, WEB_MODULES

    for name in API_MODULES:
        blp = import_module(name).blp
        api.register_blueprint(blp)
        csrf.exempt(blp)  # API auth is a Bearer token, or a session plus X-CSRFToken (market.auth)
    for name in WEB_MODULES:
        app.register_blueprint(import_module(name).bp)

    web.init_web(app)
    from market.security import init_security

    init_security(app)
    from market.cli import register_commands

    register_commands(app)
    errors.register_error_handlers(app)
    from market.leases import init_leases

    init_leases(app)
    from market.agreements.sweeper import init_agreement_sweeper

    init_agreement_sweeper(app)
    app.after_request(_commit_on_success)
    from market.auth import deferred_validation_guard

    app.after_request(deferred_validation_guard)  # registered after, so it runs before the commit
    from market.metrics.recorder import init_metrics

    init_metrics(app)  # request latency (regulator reports' HTTP p95)
    app.wsgi_app = TrustedProxies(app, app.wsgi_app)  # type: ignore[method-assign]
    return app


class TrustedProxies:
    """``ProxyFix`` for ``MARKET_TRUSTED_PROXIES`` hops (0: none, the socket peer is the client).

    Behind the TLS proxy every request comes from the proxy's address: without this, the
    rate limits would put every user in one bucket, and ``request.is_secure`` (HSTS, Secure
    cookies) would not know that the client spoke https. Only as many ``X-Forwarded-For`` /
    ``X-Forwarded-Proto`` entries as there are trusted hops are believed, so a client cannot
    pick its own address. The setting is read per request (tests change it).
    """

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._fixes: dict[int, Any] = {}

    def __call__(self, environ, start_response):
        hops = int(self.app.config.get("MARKET_TRUSTED_PROXIES") or 0)
        if hops <= 0:
            return self.wsgi_app(environ, start_response)
        fix = self._fixes.get(hops)
        if fix is None:
            from werkzeug.middleware.proxy_fix import ProxyFix

            fix = self._fixes[hops] = ProxyFix(self.wsgi_app, x_for=hops, x_proto=hops)
        return fix(environ, start_response)


def _commit_on_success(response):
    """The request boundary: commit once if the request succeeded, otherwise roll back."""
    from market.extensions import db

    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    return response


def _decimal_strings(converter, field, **kwargs):
    """Exact decimals travel as strings ("0.5000"); say so in the OpenAPI document."""
    import marshmallow as ma

    if isinstance(field, ma.fields.Decimal) and field.as_string:
        return {"type": "string", "format": "decimal"}
    return {}
