"""Browser forms (Flask-WTF, CSRF-protected) for the consent and lookup pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length


class ConsentRequestForm(FlaskForm):
    license_id = SelectField(
        _l("License"),
        coerce=int,
        validators=[DataRequired(message=_l("Choose one of your active licenses."))],
    )
    subject_credit_code = StringField(
        _l("Enterprise's Unified Social Credit Code"),
        validators=[
            DataRequired(message=_l("Enter the enterprise's 18-character credit code.")),
            Length(max=64),
        ],
    )
    purpose = TextAreaField(
        _l("Purpose"),
        validators=[
            DataRequired(message=_l("Say why you need the enterprise's records.")),
            Length(max=2000),
        ],
    )
    valid_until = DateField(
        _l("Valid until"),
        validators=[DataRequired(message=_l("Choose the last day the consent is valid."))],
    )


class LookupForm(FlaskForm):
    license_id = SelectField(
        _l("License"),
        coerce=int,
        validators=[DataRequired(message=_l("Choose one of your active licenses."))],
    )
    subject_credit_code = StringField(
        _l("Enterprise's Unified Social Credit Code"),
        validators=[
            DataRequired(message=_l("Enter the enterprise's 18-character credit code.")),
            Length(max=64),
        ],
    )


class DecisionForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["grant", "deny"])])


class RevokeForm(FlaskForm):
    pass


class RecordForm(FlaskForm):
    authorization_reference = StringField(
        _l("Authorization letter reference"),
        validators=[
            DataRequired(message=_l("Enter the reference of the paper authorization letter.")),
            Length(max=200),
        ],
    )
