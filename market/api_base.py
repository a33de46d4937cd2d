"""Shared pieces of the JSON API: pagination, the page envelope, health and keys."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from market.auth import public
from market.extensions import db
from market.keys import signing_key

MAX_PER_PAGE = 100


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    errors = ma.fields.Dict()


_page_schemas: dict[type, type[ma.Schema]] = {}


def page_of(item: type[ma.Schema]) -> type[ma.Schema]:
    """The ``{items, total, page, per_page}`` envelope for ``item`` (cached per schema)."""
    if item not in _page_schemas:
        name = item.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item] = type(
            name,
            (ma.Schema,),
            {
                "items": ma.fields.List(ma.fields.Nested(item), required=True),
                "total": ma.fields.Integer(required=True),
                "page": ma.fields.Integer(required=True),
                "per_page": ma.fields.Integer(required=True),
            },
        )
    return _page_schemas[item]


def paginate(session: Session, stmt: sa.Select, page: int, per_page: int, *, scalars: bool = True) -> dict[str, Any]:
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    result = session.execute(stmt.limit(per_page).offset((page - 1) * per_page))
    items = result.scalars().all() if scalars else result.all()
    return {"items": items, "total": total, "page": page, "per_page": per_page}


blp = Blueprint("meta", __name__, url_prefix="/api/v1", description="Health and platform keys")


class HealthSchema(ma.Schema):
    status = ma.fields.String()
    database = ma.fields.String()
    schema = ma.fields.String(metadata={"description": "ok, outdated (not at the migrations' "
                                                        "head) or missing (never migrated)"})
    version = ma.fields.String()


class KeySchema(ma.Schema):
    id = ma.fields.String()
    alg = ma.fields.String()
    public_key = ma.fields.String(metadata={"description": "Raw Ed25519 key, URL-safe base64"})


class KeysSchema(ma.Schema):
    keys = ma.fields.List(ma.fields.Nested(KeySchema))


@blp.route("/health")
class Health(MethodView):
    @public
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema)
    def get(self):
        """Liveness and database reachability."""
        from market.security import schema_state

        try:
            db.session.execute(sa.text("SELECT 1"))
            database = "ok"
        except Exception:
            db.session.rollback()
            database = "unavailable"
        schema = schema_state() if database == "ok" else "unknown"
        healthy = database == "ok" and schema == "ok"
        body = {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "schema": schema,
            "version": current_app.config["MARKET_VERSION"],
        }
        return body, (200 if healthy else 503)


@blp.route("/keys")
class Keys(MethodView):
    @public
    @blp.response(200, KeysSchema)
    def get(self):
        """The platform's public signing keys, to verify quotes, licenses and checkpoints."""
        return {"keys": [signing_key().describe()]}
