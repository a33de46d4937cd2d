from __future__ import annotations

import datetime as dt

import marshmallow as ma

from market.web import validators as mv


class EventFilterSchema(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=mv.Range(min=1))
    per_page = ma.fields.Integer(load_default=50, validate=mv.Range(min=1, max=500))
    type = ma.fields.String(validate=mv.Length(max=64))
    actor_org = ma.fields.Integer()
    since = ma.fields.AwareDateTime(default_timezone=dt.UTC)
    until = ma.fields.AwareDateTime(default_timezone=dt.UTC)


class SubjectSchema(ma.Schema):
    type = ma.fields.String()
    id = ma.fields.String()


class EventSchema(ma.Schema):
    seq = ma.fields.Integer()
    at = ma.fields.String()
    type = ma.fields.String()
    actor = ma.fields.Dict()
    subject = ma.fields.Nested(SubjectSchema, allow_none=True)
    data = ma.fields.Dict()
    prev_hash = ma.fields.String()
    hash = ma.fields.String()


class VerifySchema(ma.Schema):
    valid = ma.fields.Boolean(required=True)
    events = ma.fields.Integer(required=True)
    head = ma.fields.String(required=True)
    checkpoints = ma.fields.Integer()
    first_invalid_seq = ma.fields.Integer()
    reason = ma.fields.String()


class HeadSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)
    signed_at = ma.fields.String(required=True)
    signature = ma.fields.String(required=True)
    public_key_id = ma.fields.String(required=True)


class CheckpointSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)
    signed_at = ma.fields.String(required=True)
    public_key_id = ma.fields.String(required=True)
    signature = ma.fields.String(required=True)
    signature_valid = ma.fields.Boolean(required=True)
    events_after_this = ma.fields.Integer(required=True)


class ChainPositionSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)
    prev_hash = ma.fields.String(required=True)
    previous_seq = ma.fields.Integer(allow_none=True)
    next_seq = ma.fields.Integer(allow_none=True)
    link_ok = ma.fields.Boolean(required=True)
    hash_ok = ma.fields.Boolean(required=True)
    checkpoint = ma.fields.Nested(CheckpointSchema, allow_none=True)


class EventInChainSchema(ma.Schema):
    event = ma.fields.Nested(EventSchema, required=True)
    chain = ma.fields.Nested(ChainPositionSchema, required=True)
