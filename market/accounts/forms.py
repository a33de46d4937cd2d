from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional


class RegisterForm(FlaskForm):
    organization_name = StringField(_l("Organization name"), validators=[DataRequired(), Length(max=200)])
    credit_code = StringField(_l("Unified Social Credit Code"), validators=[DataRequired(), Length(min=18, max=18, message=_l("A credit code has 18 characters."))])
    kind = SelectField(_l("Organization type"), choices=[SelectChoice("buyer", _l("Bank or enterprise using data")), SelectChoice("subject", _l("Enterprise (data subject)"))])
    email = EmailField(_l("Contact e-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, message=_l("Use at least 10 characters."))])
    confirm = PasswordField(_l("Repeat the password"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))])


class AdmissionForm(FlaskForm):
    org_id = HiddenField(validators=[DataRequired()])
    decision = HiddenField(validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=2000)])


class OrganizationForm(FlaskForm):
    name = StringField(_l("Organization name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=[
        SelectChoice("department", _l("Data provider department")), SelectChoice("buyer", _l("Data buyer")),
        SelectChoice("operator", _l("Authorized operator")), SelectChoice("regulator", _l("Regulator")), SelectChoice("subject", _l("Data subject")),
    ])
    credit_code = StringField(_l("Unified Social Credit Code"), validators=[DataRequired(), Length(min=18, max=18, message=_l("A credit code has 18 characters."))])


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, message=_l("Use at least 10 characters."))])
    organization_id = SelectField(_l("Organization"), coerce=int, choices=[])
