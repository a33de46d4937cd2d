"""Browser forms (Flask-WTF, CSRF-protected) for the license, payment, revenue and blacklist
pages."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError


class ApplyForm(FlaskForm):
    purpose_statement = TextAreaField(
        _l("Purpose statement"),
        validators=[
            DataRequired(message=_l("Say what you will use the data for.")),
            Length(max=4000),
        ],
    )

    #: Required by the service for a free (public-welfare) quote, with its error placed here.
    free_use_justification = TextAreaField(
        _l("Public-welfare justification"), validators=[Optional(), Length(max=4000)]
    )


class PayForm(FlaskForm):
    provider = HiddenField(validators=[AnyOf(["invoice", "stripe"])])


class ReviewForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])


class StatusForm(FlaskForm):
    action = HiddenField(validators=[AnyOf(["suspend", "reinstate", "revoke"])])
    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(message=_l("Give the reason.")), Length(max=2000)]
    )
    refund = BooleanField(
        _l("Refund the unused share of term and quota (the smaller)"), default=True
    )


class SettleForm(FlaskForm):
    payment_id = HiddenField(validators=[DataRequired()])
    bank_reference = StringField(
        _l("Bank reference"),
        validators=[
            DataRequired(message=_l("Enter the reference of the bank transfer.")),
            Length(max=200),
        ],
    )


class CreditNotePayForm(FlaskForm):
    reference = StringField(
        _l("Transfer reference"),
        validators=[
            DataRequired(message=_l("Enter the reference of the bank transfer.")),
            Length(max=200),
        ],
    )


def yuan_to_fen(text: str) -> int:
    """ "1,234.5" → 123450. Raises ValueError for anything that is not a positive amount with
    at most two decimals."""
    try:
        value = Decimal((text or "").replace(",", "").replace("¥", "").strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError("not a positive amount in yuan with at most two decimals")
    return int(value * 100)


class PayoutForm(FlaskForm):
    department_id = SelectField(_l("Department"), coerce=int, validators=[DataRequired()])
    amount = StringField(_l("Amount (yuan)"), validators=[DataRequired()])
    reference = StringField(_l("Transfer reference"), validators=[DataRequired(), Length(max=120)])

    def validate_amount(self, field) -> None:
        try:
            self.amount_fen = yuan_to_fen(field.data)
        except ValueError:
            raise ValidationError(_l("Enter a positive amount in yuan, e.g. 1234.56.")) from None


class BlacklistForm(FlaskForm):
    organization_id = SelectField(_l("Organization"), coerce=int, validators=[DataRequired()])
    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(message=_l("Give the reason.")), Length(max=2000)]
    )


class BlacklistRemoveForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for removal"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=2000)],
    )
