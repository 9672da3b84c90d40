"""Claiming the device, logging in and out, and ``login_required`` for everything personal."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from common.errors import BadInput
from webui import api_error, get_db, wants_json
from webui.security import (
    PASSWORD_MAX,
    LoginLimiter,
    Owner,
    authenticate,
    check_password_rules,
    check_recovery_code,
    claim,
    code_matches,
    find_owner,
    is_claimed,
    recover,
)

bp = Blueprint("auth", __name__)
View = TypeVar("View", bound=Callable[..., Any])
LOGIN_FAILED = "That name and password do not match."
NAME_MAX = 50  # as the profile (device.store.profiles_repo)


def _password_rules(_form: FlaskForm, field: PasswordField) -> None:
    problem = check_password_rules(field.data or "")
    if problem:
        raise ValidationError(problem)


def _name_length(_form: FlaskForm, field: StringField) -> None:
    # not wtforms' Length: it adds maxlength to the input, which cuts a pasted name silently
    if len(field.data or "") > NAME_MAX:
        raise ValidationError(f"Use at most {NAME_MAX} characters: this name has "
                              f"{len(field.data)}. Nothing was cut.")


class ClaimForm(FlaskForm):
    code = StringField("Setup code", validators=[DataRequired("Enter the setup code.")])
    display_name = StringField("Your name",
                               validators=[DataRequired("Enter a name."), _name_length])
    password = PasswordField("Password", validators=[_password_rules])
    confirm = PasswordField(
        "Password again", validators=[EqualTo("password", "The two passwords differ.")]
    )


class RecoverForm(FlaskForm):
    code = StringField("Recovery code", validators=[DataRequired("Enter the recovery code.")])
    password = PasswordField("New password", validators=[_password_rules])
    confirm = PasswordField(
        "New password again", validators=[EqualTo("password", "The two passwords differ.")]
    )


class LoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter your name.")])
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=PASSWORD_MAX)],
    )


def sentence(message: str) -> str:
    """A device message (``that code is not valid; run ...``) as a sentence for a person."""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


def current_owner() -> Owner | None:
    """The logged-in owner, or None. A session from before a password change no longer counts."""
    if "owner" not in g:
        owner = None
        if "owner" in session:
            found = find_owner(get_db())
            if (found and found.profile.id == session["owner"]
                    and found.session_epoch == session.get("epoch")):
                owner = found
        g.owner = owner
    return g.owner


@bp.app_context_processor
def _owner_in_templates() -> dict[str, Any]:
    return {"owner": current_owner()}


def login_required(view: View) -> View:
    """Pages redirect to the login form; API paths answer 401 JSON."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_owner() is None:
            if wants_json():
                return api_error(401, "unauthorized", "log in first (POST /login)")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    wrapped.login_required = True  # type: ignore[attr-defined]  # read by webui.openapi
    return wrapped  # type: ignore[return-value]


def limiter() -> LoginLimiter:
    return current_app.extensions["breathe.login_limiter"]


def client_address() -> str:
    return request.remote_addr or "unknown"


def refuse_if_locked() -> None:
    wait = limiter().retry_after(client_address())
    if wait is not None:
        raise TooManyRequests(
            f"Too many failed attempts. Try again in {wait} seconds.", retry_after=wait
        )


def _start_session(owner_id: str, epoch: str) -> None:
    session.clear()
    session["owner"] = owner_id
    session["epoch"] = epoch
    session.permanent = True


def home_url() -> str:
    """Where a logged-in person lands: the app's home page once one is registered."""
    if "pages.index" in current_app.view_functions:
        return url_for("pages.index")
    return url_for("auth.account")


def _safe_next(target: str | None) -> str | None:
    """Only paths on this site: an open redirect would turn the login page into a lure."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _show_refusal(form: FlaskForm, exc: BadInput) -> None:
    """A device message (``field: text``) next to its field; a wrong code counts as a failed
    login (the limiter stops guessing)."""
    field, _, message = str(exc).partition(": ")
    target = getattr(form, field, form.code)
    target.errors = [*target.errors, sentence(message)]
    if target is form.code:
        limiter().failed(client_address())


# Endpoint "auth.claim": the gate in webui/__init__ lets it through before the device has an owner.
@bp.route("/claim", methods=["GET", "POST"], endpoint="claim")
def claim_page() -> Any:
    db = get_db()
    if is_claimed(db):
        return redirect(url_for("auth.login"))
    form = ClaimForm()
    if request.method == "POST":
        refuse_if_locked()
        valid = form.validate_on_submit()
        try:
            if form.code.data and not code_matches(db, form.code.data):  # said first
                raise BadInput("code: that setup code is not valid; run 'breathe claim-code' "
                               "on the device for a new one")
            profile = (claim(db, form.code.data, form.display_name.data, form.password.data)
                       if valid else None)
        except BadInput as exc:
            _show_refusal(form, exc)
        else:
            if profile is not None:
                owner = find_owner(db)
                assert owner is not None and owner.profile.id == profile.id
                _start_session(profile.id, owner.session_epoch)
                return redirect(home_url())
    status = 400 if form.errors else 200
    return render_template("claim.html", form=form), status


@bp.route("/recover", methods=["GET", "POST"], endpoint="recover")
def recover_page() -> Any:
    """A new password with the recovery code printed at the device's console; logs in."""
    db = get_db()
    if not is_claimed(db):
        return redirect(url_for("auth.claim"))
    form = RecoverForm()
    if request.method == "POST":
        refuse_if_locked()
        valid = form.validate_on_submit()
        try:
            if form.code.data:
                check_recovery_code(db, form.code.data)  # said first, whatever else is wrong
            owner = recover(db, form.code.data, form.password.data) if valid else None
        except BadInput as exc:
            _show_refusal(form, exc)
        else:
            if owner is not None:
                limiter().succeeded(client_address())
                _start_session(owner.profile.id, owner.session_epoch)
                return redirect(home_url())
    status = 400 if form.errors else 200
    return render_template("recover.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    failed = False
    if request.method == "POST":
        refuse_if_locked()
        if form.validate_on_submit():
            owner = authenticate(get_db(), form.name.data, form.password.data)
            if owner is not None:
                limiter().succeeded(client_address())
                _start_session(owner.profile.id, owner.session_epoch)
                return redirect(_safe_next(request.args.get("next")) or home_url())
            limiter().failed(client_address())
            failed = True
    status = 401 if failed else (400 if form.errors else 200)
    return render_template("login.html", form=form, failed=failed, message=LOGIN_FAILED), status


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> str:
    return render_template("account.html")
