from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class LogoutForm(FlaskForm):
    pass


def apply_domain_errors(form: FlaskForm, exc) -> None:
    """Show a service's field errors next to the matching form fields (others at the top)."""
    leftovers = []
    for name, messages in (exc.errors or {}).items():
        field = getattr(form, name, None)
        msgs = messages if isinstance(messages, list) else [str(messages)]
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + msgs
        else:
            leftovers.extend(msgs)
    form.form_errors = list(getattr(form, "form_errors", []) or []) + (
        leftovers or ([] if exc.errors else [exc.message])
    )
