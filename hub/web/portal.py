"""The partner portal under /portal: log-in, sign-up, password reset, and the partner's pages.

Every page behind the log-in runs `signed_in_partner` first, which loads the partner named by the
session and nothing else; handlers then read through `portal_data`, whose every query is scoped
to that partner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.api.http import whole_number
from hub.attribution import passwords
from hub.attribution.customers import missing_requirements
from hub.attribution.links import (
    CREATIVES,
    build_link,
    default_link,
    default_trial,
    link_json,
    links_of,
    performance,
    program_landing,
    trial_choices,
)
from hub.attribution.partners import (
    EMAIL_RE,
    accept_agreement,
    create_partner,
    initial_status,
    self_signup_kind,
)
from hub.attribution.support import program_contacts, supports_customers
from hub.clock import EARLIEST_DAY, clamp_day, utcnow
from hub.db.models import Partner
from hub.errors import HTTPError, NotFound, Unprocessable
from hub.ledger import entries as ledger
from hub.money import exponent, format_money
from hub.notify import notices
from hub.payouts.requests import request_withdrawal
from hub.web import account_links, charts, materials, portal_payee, trends
from hub.web import portal_data as data
from hub.web.csv_cells import csv_lines
from hub.web.pages import Redirect, View, login_url, page_number, safe_next, serve
from hub.web.security import (
    PORTAL,
    close_login,
    end_other_logins,
    fingerprint,
    login_alive,
    open_login,
)
from hub.web.throttle import client_address, throttle_of

LOGIN_STATUSES = {"active"}
AGREEMENT_PATH = "/portal/agreement"
STATUS_MESSAGES = {"applied": "Your application is being reviewed; we will e-mail you once it "
                              "is approved.",
                   "invited": "Your invitation is waiting for the operator's approval.",
                   "declined": "This application was declined.",
                   "suspended": "This account is suspended; contact the program's operator."}
SIGNUP_RECEIVED = ("Thank you for signing up. If you cannot log in with this e-mail and password "
                   "yet, check your inbox: if an account uses this address, we have sent it a "
                   "link to choose a password; else we write to you there about what happens "
                   "next.")
FORGOT_SENT = ("If an account uses that address, we have sent it a link to choose a new "
               "password. It is valid for one hour.")
RESET_THROTTLE = timedelta(minutes=5)  # at most one "Forgot password?" mail per account this often


def signed_in_partner(view: View) -> None:
    """The session's partner, still active and with the password the session was opened with."""
    partner_id = view.session.data.get("pid")
    partner = view.db.get(Partner, partner_id) if partner_id else None
    if (partner is None or partner.status not in LOGIN_STATUSES
            or view.session.data.get("pwv") != fingerprint(partner.password_hash)
            or not login_alive(view.db, view.session, partner.id)):
        if partner_id:
            view.session.restart()
        raise Redirect(login_url(PORTAL, view.request))
    view.partner = partner
    money = data.money_of(view.hub, partner)
    view.extra.update(money=money, currency=money.currency, locale=money.locale)
    view.extra["contacts"] = program_contacts(view.hub, view.hub.program(partner.program))
    if (missing_requirements(view.hub, partner, current=True)
            and view.request.url.path != AGREEMENT_PATH):
        raise Redirect(AGREEMENT_PATH)  # the agreement comes before anything else


def page(handler: Any, write: bool = False) -> Any:
    return serve(PORTAL, handler, guard=signed_in_partner, write=write)


def public(handler: Any, write: bool = False) -> Any:
    return serve(PORTAL, handler, guard=None, write=write)


def _page_number(view: View) -> int:
    return page_number(view.query("page", "1"))


def _fmt(view: View) -> Any:
    money = view.extra["money"]
    return lambda minor: format_money(minor, money.currency, money.locale)


# -- signing in and out ----------------------------------------------------------------------

def login_form(view: View) -> Response:
    """The partner log-in form."""
    return view.page("portal_login.html", title="Log in", next=view.query("next"),
                     programs=_signup_programs(view), many=len(view.hub.programs) > 1)


def login(view: View) -> Response:
    """Check e-mail and password; open a fresh session for the partner they belong to."""
    email, password, program = (view.value("email").lower(), view.value("password"),
                                view.value("program"))
    throttle, address = throttle_of(view.hub), client_address(view.request)
    throttle.check(PORTAL.name, email, address)  # before any work: 429 with Retry-After
    query = select(Partner).where(func.lower(Partner.email) == email).order_by(Partner.created_at)
    if program:
        query = query.where(Partner.program == program)
    candidates = list(view.db.scalars(query))
    # One argon2 verification per account, and one (against a dummy hash) when there is none:
    # a wrong password costs the same whether or not the e-mail has an account.
    if not candidates:
        passwords.verify_password(None, password)
    matches = [p for p in candidates if passwords.verify_password(p.password_hash, password)]
    if not matches:
        throttle.failed(PORTAL.name, email, address)
        return _login_again(view, "E-mail or password is wrong.")
    partner = next((p for p in matches if p.status in LOGIN_STATUSES), matches[0])
    if partner.status not in LOGIN_STATUSES:
        return _login_again(view, STATUS_MESSAGES.get(partner.status,
                                                      "This account is not active."))
    open_login(view.db, view.session, partner.id, pid=partner.id,
               pwv=fingerprint(partner.password_hash))
    raise Redirect(safe_next(view.value("next"), PORTAL))


def _login_again(view: View, message: str) -> Response:
    view.flash(message, "error")
    return login_form(view)


def logout(view: View) -> Response:
    """End the session, here and on the server (POST with the CSRF token, so no other site can
    log a partner out)."""
    close_login(view.db, view.session)
    view.flash("You are logged out.")
    raise Redirect("/portal/login")


def _signup_programs(view: View) -> list[str]:
    return [name for name, p in view.hub.programs.items()
            if getattr(p.settings, "self_signup", False)]


def signup_form(view: View) -> Response:
    """Self sign-up, for programs that allow it."""
    programs = _signup_programs(view)
    if not programs:
        raise NotFound("sign-up is closed; ask the program's operator for an invitation")
    return view.page("portal_signup.html", title="Sign up", programs=programs,
                     chosen=view.query("program") or view.value("program"))


def signup(view: View) -> Response:
    """Create the partner with its password; log in at once unless the program approves first."""
    program = view.value("program")
    if program not in _signup_programs(view):
        raise Unprocessable("that program does not take sign-ups")
    no_paypal = view.value("no_paypal") == "on"  # "I have no PayPal account": paid by hand
    try:
        password_hash = passwords.hash_password(view.value("password"))
        if not EMAIL_RE.match(view.value("email")):
            raise Unprocessable("email is not a valid address", code="invalid_email")
        existing = view.db.scalar(select(Partner.id).where(
            Partner.program == program,
            func.lower(Partner.email) == view.value("email").lower()))
        if existing:
            return _signup_taken(view, program, existing)
        partner = create_partner(view.hub, view.db, program=program, email=view.value("email"),
                                 kind=self_signup_kind(view.hub, view.hub.programs[program]),
                                 name=view.value("name"), website=view.value("website") or None,
                                 paypal_email=None if no_paypal
                                 else view.value("paypal_email").strip() or None,
                                 password_hash=password_hash, paypal_confirmed=False)
        portal_payee.after_signup(view, partner, no_paypal)
    except HTTPError as exc:
        view.flash(exc.message, "error")
        return signup_form(view)
    token, expires = passwords.create_reset_token(view.db, partner.id, purpose=passwords.VERIFY,
                                                  valid_for=passwords.VERIFY_VALID_FOR)
    notices.email_verification(view.db, partner, token, expires)
    if partner.status not in LOGIN_STATUSES:
        return _application_received(view, partner.status)
    open_login(view.db, view.session, partner.id, pid=partner.id, pwv=fingerprint(password_hash))
    raise Redirect("/portal/")


def _application_received(view: View, status: str) -> Response:
    return view.page("portal_message.html", title="Application received",
                     message=STATUS_MESSAGES.get(status, ""))


def _signup_taken(view: View, program: str, partner_id: str) -> Response:
    """The answer to a sign-up with an address that has an account in the program already.

    Saying so would tell anyone whether an address has an account: nothing is created or
    changed, and the page is the one a new application gets where the program approves first,
    or a neutral one where new accounts log in at once. The owner (`partner_id`) gets a link to
    choose a password by mail (e.g. an automatically enrolled ambassador, who has none)."""
    account_links.mail_set_password_link(view.db, partner_id, LOGIN_STATUSES)
    prog = view.hub.programs[program]
    status = initial_status(view.hub, prog, self_signup_kind(view.hub, prog), invited=False)
    if status not in LOGIN_STATUSES:
        return _application_received(view, status)
    return view.page("portal_message.html", title="Thank you", message=SIGNUP_RECEIVED)


def forgot_form(view: View) -> Response:
    """"Forgot password?": ask for a one-time link by e-mail."""
    return view.page("portal_forgot.html", title="Forgot password")


def forgot(view: View) -> Response:
    """Mail a one-hour reset link to every active account with that address. The answer is the
    same whether or not one exists, so the form tells nobody who is a partner."""
    email = view.value("email").strip().lower()
    if EMAIL_RE.match(email):
        for partner in view.db.scalars(select(Partner).where(
                func.lower(Partner.email) == email, Partner.status.in_(LOGIN_STATUSES))):
            if not passwords.recently_sent(view.db, partner.id, RESET_THROTTLE):
                token, expires = passwords.create_reset_token(
                    view.db, partner.id, valid_for=passwords.SELF_RESET_VALID_FOR)
                notices.password_reset(view.db, partner, token, expires)
    return view.page("portal_message.html", title="Check your mail", message=FORGOT_SENT)


def verify(view: View) -> Response:
    """The link of the verification mail a self sign-up receives."""
    partner = passwords.spend_token(view.db, view.request.path_params["token"], passwords.VERIFY)
    if partner is None:
        return view.page("portal_message.html", title="Link expired",
                         message="This link was used already or has expired.")
    partner.email_verified_at = partner.email_verified_at or utcnow()
    return view.page("portal_message.html", title="E-mail confirmed",
                     message="Thank you: your e-mail address is confirmed.")


def reset_form(view: View) -> Response:
    """Choose a password with a one-time link (from the operator or "Forgot password?")."""
    token = view.request.path_params["token"]
    if passwords.find_reset_token(view.db, token) is None:
        return view.page("portal_message.html", title="Link expired",
                         message="This link was used already or has expired; ask for a new "
                                 "one with \"Forgot password?\" on the log-in page.")
    return view.page("portal_reset.html", title="Choose a password", token=token)


def reset(view: View) -> Response:
    token = view.request.path_params["token"]
    if view.value("password") != view.value("password_again"):
        view.flash("The two passwords differ.", "error")
        return reset_form(view)
    try:
        partner = passwords.use_reset_token(view.db, token, view.value("password"))
    except HTTPError as exc:
        view.flash(exc.message, "error")
        return reset_form(view)
    if partner is None:
        return reset_form(view)
    partner.email_verified_at = partner.email_verified_at or utcnow()  # the link came by mail
    view.session.restart()
    end_other_logins(view.db, view.session, partner.id)  # a new password ends every session
    view.flash("Your password is set; log in with it.")
    raise Redirect("/portal/login")


# -- the partner's pages ---------------------------------------------------------------------

def dashboard(view: View) -> Response:
    """Balances, totals, trends for a chosen period, the Withdraw button and its reason."""
    partner, money = view.partner, view.extra["money"]
    balances = ledger.balances(view.db, partner.id)
    balance = data.balance_for(balances, money.currency)
    counted = data.tallies(view.db, partner)
    counts = data.current_counts(view.db, partner, counted)
    today = data.today_utc()
    period = trends.period_of(view.query("period", trends.DEFAULT_PERIOD))
    series = data.trend_series(view.db, partner, money, period, today, counts)
    return view.page("portal_dashboard.html", title="Dashboard", balance=balance,
                     total=data.total_commission(balance), counts=counts,
                     clicks_30d=data.unique_clicks(view.db, partner, today - timedelta(days=29)),
                     withdraw=data.withdraw_state(view.hub, view.db, partner, money,
                                                  balance["payable"], balance["pending"]),
                     top_links=data.link_counts(view.db, partner, counted=counted),
                     last_links=data.recent_links(view.db, partner, counted=counted),
                     period=period, share=data.share_link(view.hub, partner),
                     conversions=data.conversions(view.hub, view.db, partner),
                     periods=trends.PERIODS.values(), series=series,
                     charts=_charts(series, _fmt(view)),
                     other_balances=[b for b in balances if b["currency"] != money.currency])


CHARTS = (("commission", "Commission", "bar"), ("new_trials", "New trials", "bar"),
          ("new_subscriptions", "New subscriptions", "bar"),
          ("unique_clicks", "Unique clicks", "bar"), ("active_trials", "Active trials", "line"),
          ("active_subscriptions", "Active subscriptions", "line"))


def _charts(series: dict[str, Any], fmt: Any) -> dict[str, Markup]:
    out = {}
    for key, caption, kind in CHARTS:
        draw = charts.bar_chart if kind == "bar" else charts.line_chart
        out[key] = (draw(series[key], caption, fmt) if key == "commission"
                    else draw(series[key], caption))
    return out


# -- links -----------------------------------------------------------------------------------

def _range(view: View) -> tuple[date, date]:
    """The `from` / `to` query (UTC days), default the last 30 days; nonsense falls back;
    `?period=all`: all time (CallPage's all-time client counts)."""
    today = data.today_utc()
    if view.query("period") == "all":
        return EARLIEST_DAY, today
    end = _day(view.query("to"), today)
    start = _day(view.query("from"), end - timedelta(days=29))
    return (start, end) if start <= end else (end, end)


def _day(raw: str, default: date) -> date:
    try:
        return clamp_day(date.fromisoformat(raw)) if raw else default
    except ValueError:
        return default


def links(view: View) -> Response:
    """The link builder and every link with clicks, trials and subscriptions over a date range."""
    partner, config = view.partner, view.hub.config
    start, end = _range(view)
    default_link(view.db, partner)
    stats = performance(view.db, partner.id, start, end)
    rows = [(link_json(config, link), stats.get(link.code, {}))
            for link in reversed(links_of(view.db, partner.id))]
    program, images = view.hub.program(partner.program), data.creative_images(config)
    return data.with_image_sources(view.page(
        "portal_links.html", title="Links", rows=rows, start=start, end=end,
        all_time=start == EARLIEST_DAY, images=images, texts=config.links,
        default_trial=default_trial(program),
        creatives=[c for c in CREATIVES if _creative_ready(config, c)],
        trials=trial_choices(program) if program else (), domains=config.server.allowed_domains,
        landing=program_landing(config, program),
        built=view.session.pop("built_link")), images.values())


def _creative_ready(config: Any, creative: str) -> bool:
    return creative in ("plain", "text") or bool(getattr(config.links, f"{creative}_url", ""))


def build(view: View) -> Response:
    """The builder's form: a new link through the same core function the JSON API calls."""
    partner = view.partner
    program = view.hub.program(partner.program)
    if program is None:
        raise Unprocessable("this program is no longer running")
    trial = view.value("trial_days")
    try:
        link = build_link(view.hub.config, program, view.db, partner,
                          destination=view.value("destination") or None,
                          trial_days=whole_number(trial, 10_000),
                          creative=view.value("creative") or "plain",
                          description=view.value("description"))
    except HTTPError as exc:
        view.flash(exc.message, "error")
        return links(view)
    view.session.set(built_link=link.code)
    view.flash("Your link is ready: copy it or its HTML below.")
    raise Redirect("/portal/links#built")


def referrals(view: View) -> Response:
    """Clients: one page of referrals with status, plan and the money each brought."""
    page_number = _page_number(view)
    rows, total = data.referral_page(view.db, view.partner, view.extra["currency"], page_number)
    return view.page("portal_referrals.html", title="Clients", rows=rows, total=total,
                     page_number=page_number,
                     pages=max((total + data.PAGE_SIZE - 1) // data.PAGE_SIZE, 1),
                     show_names=customer_names_visible(view), supports=_supports(view))


def _supports(view: View) -> bool:
    """Whether this partner's kind takes its clients' support requests (odoopbx partners)."""
    return supports_customers(view.hub, view.hub.program(view.partner.program), view.partner.kind)


def help_page(view: View) -> Response:
    """How to reach the program (its contact and support details) and who supports the clients."""
    return view.page("portal_help.html", title="Help", program=view.partner.program,
                     supports=_supports(view))


def customer_names_visible(view: View) -> bool:
    """Whether this partner's kind sees its customers' e-mail addresses unmasked (the program's
    kind profile; e.g. odoopbx referrals do not)."""
    program = view.hub.program(view.partner.program)
    return (program is not None
            and view.hub.kind_profile(program, view.partner.kind).sees_customer_names)


def referral(view: View) -> Response:
    raw = view.request.path_params["referral_id"]
    referral_id = whole_number(raw)
    if referral_id is None:
        raise NotFound("no such client")
    detail = data.referral_detail(view.db, view.partner, referral_id)
    return view.page("portal_referral.html", title="Client", supports=_supports(view),
                     show_names=customer_names_visible(view), **detail)


def transactions(view: View) -> Response:
    """Commission lines (reversals negative) and withdrawals, with a CSV download."""
    page_number = _page_number(view)
    lines, total = data.commission_page(view.db, view.partner, page_number)
    return view.page("portal_transactions.html", title="Transactions", lines=lines, total=total,
                     page_number=page_number, plans=data.line_plans(view.db, view.partner, lines),
                     pages=max((total + data.PAGE_SIZE - 1) // data.PAGE_SIZE, 1),
                     payouts=data.payouts_of(view.db, view.partner, limit=20))


def transactions_csv(view: View) -> Response:
    """Every commission line and withdrawal of the partner as CSV."""
    lines = ledger.commission_lines(view.db, view.partner.id, limit=1_000_000)
    payouts = data.payouts_of(view.db, view.partner, limit=1_000_000)
    name = f"transactions-{view.partner.code}-{utcnow().date().isoformat()}.csv"
    return StreamingResponse(_transaction_rows(lines, payouts),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _transaction_rows(lines: list[ledger.LineView], payouts: list[Any]) -> Iterator[str]:
    header = ["date", "type", "id", "amount", "currency", "state", "source_event", "explanation"]
    commissions = ([c.earned_at.isoformat(), "reversal" if c.reverses_id else "commission", c.id,
                    _major(c.amount, exponent(c.currency)), c.currency, view.state,
                    view.source_event or "", (c.rule or {}).get("sentence", "")]
                   for view in lines for c in (view.commission,))
    withdrawals = ([p.created_at.isoformat(), "withdrawal", p.id,
                    _major(-p.amount, exponent(p.currency)), p.currency, p.status, "",
                    p.reference or ""] for p in payouts)
    return csv_lines(header, itertools.chain(commissions, withdrawals))


def _major(minor: int, exp: int) -> str:
    return str(Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp)))


def payouts(view: View) -> Response:
    """Withdrawal and payout history with pending / paid / rejected / failed; the Withdraw form."""
    partner, money = view.partner, view.extra["money"]
    balance = data.balance_for(ledger.balances(view.db, partner.id), money.currency)
    return view.page("portal_payouts.html", title="Payouts",
                     payouts=data.payouts_of(view.db, partner),
                     counts=data.payout_counts(view.db, partner), shown_as=data.PAYOUT_SHOWN_AS,
                     balance=balance,
                     withdraw=data.withdraw_state(view.hub, view.db, partner, money,
                                                  balance["payable"], balance["pending"]))


def withdraw(view: View) -> Response:
    """Ask to be paid: the payouts core decides (its 422 reasons are shown as they are)."""
    partner, currency = view.partner, view.extra["currency"]
    try:
        payout = request_withdrawal(view.hub, view.db, partner.id, currency,
                                    view.value("method") or None, actor=f"partner:{partner.id}")
    except HTTPError as exc:
        view.flash(f"No withdrawal: {exc.message}.", "error")
        raise Redirect("/portal/payouts") from None
    view.flash(f"Withdrawal of {_fmt(view)(payout.amount)} requested; we will let you know "
               "when it is paid.")
    raise Redirect("/portal/payouts")


def agreement(view: View) -> Response:
    """The program's partner agreement, to accept before anything else (e.g. CTM)."""
    if not missing_requirements(view.hub, view.partner, current=True):
        raise Redirect("/portal/")
    return view.page("portal_agreement.html", title="Partner agreement",
                     terms=view.hub.programs[view.partner.program].settings)


def accept(view: View) -> Response:
    """Record the acceptance with a timestamp (audited), then on to the dashboard."""
    accept_agreement(view.db, view.partner.id, f"partner:{view.partner.id}", hub=view.hub)
    view.flash("Thank you: the agreement is accepted and your links work now.")
    raise Redirect("/portal/")


def settings_form(view: View) -> Response:
    """PayPal e-mail or "no PayPal account" (need the password), website, billing details,
    password."""
    return view.page("portal_settings.html", title="Settings")


def settings_save(view: View) -> Response:
    partner = view.partner
    action = view.value("action")
    try:
        if action == "profile":
            _save_profile(view, partner)
        elif action in portal_payee.ACTIONS:  # the PayPal address, or paid by hand
            portal_payee.ACTIONS[action](view, partner)
        elif action == "password":
            _save_password(view, partner)
        elif action == "mail":
            partner.mail_commissions = view.value("mail_commissions") == "on"
            view.flash("Your mail settings are saved.")
        else:
            raise Unprocessable("unknown settings form")
    except HTTPError as exc:  # each form validates before it changes anything
        view.flash(exc.message, "error")
        return settings_form(view)
    raise Redirect("/portal/settings")


def _save_profile(view: View, partner: Partner) -> None:
    website = view.value("website")
    if website and not website.startswith(("https://", "http://")):
        raise Unprocessable("the website must start with https:// or http://")
    billing = view.value("billing_details")[:4000] or None
    if billing != partner.billing_details:  # where money goes: the password, and the audit log
        portal_payee.require_password(view, partner)
        portal_payee.audit_billing_change(view, partner, partner.billing_details, billing)
        partner.billing_details = billing
    partner.name = view.value("name")[:200]
    partner.website = website[:500] or None
    view.flash("Saved.")


def _save_password(view: View, partner: Partner) -> None:
    portal_payee.require_password(view, partner)
    if view.value("password") != view.value("password_again"):
        raise Unprocessable("the two new passwords differ")
    partner.password_hash = passwords.hash_password(view.value("password"))
    view.session.set(pwv=fingerprint(partner.password_hash))
    end_other_logins(view.db, view.session, partner.id)
    view.flash("Your password is changed.")


def materials_page(view: View) -> Response:
    """The creatives the operator uploaded for this program."""
    return view.page("portal_materials.html", title="Materials",
                     materials=data.materials_for(view.db, view.partner.program),
                     inline_types=materials.INLINE_TYPES)


def material_file(view: View) -> Response:
    material = data.material_for(view.db, view.partner.program,
                                 view.request.path_params["material_id"])
    path = materials.path_of(view.hub, material.id)
    if not path.exists():
        raise NotFound("the file is missing")
    inline = view.query("inline") == "1" and material.content_type in materials.INLINE_TYPES
    return FileResponse(path,
                        media_type=material.content_type if inline else "application/octet-stream",
                        filename=material.filename,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"Content-Security-Policy": "default-src 'none'; sandbox",
                                 "X-Content-Type-Options": "nosniff"})


def home_redirect(view: View) -> Response:
    raise Redirect("/portal/")


ROUTES = [
    Route("/portal", public(home_redirect), methods=["GET"]),
    Route("/portal/login", public(login_form), methods=["GET"]),
    Route("/portal/login", public(login, write=True), methods=["POST"]),
    Route("/portal/logout", public(logout, write=True), methods=["POST"]),
    Route("/portal/signup", public(signup_form), methods=["GET"]),
    Route("/portal/signup", public(signup, write=True), methods=["POST"]),
    Route("/portal/forgot", public(forgot_form), methods=["GET"]),
    Route("/portal/forgot", public(forgot, write=True), methods=["POST"]),
    Route("/portal/verify/{token}", public(verify, write=True), methods=["GET"]),
    Route("/portal/reset/{token}", public(reset_form), methods=["GET"]),
    Route("/portal/reset/{token}", public(reset, write=True), methods=["POST"]),
    Route("/portal/paypal/confirm/{token}", public(portal_payee.confirm_form), methods=["GET"]),
    Route("/portal/paypal/confirm/{token}", public(portal_payee.confirm, write=True),
          methods=["POST"]),
    Route("/portal/", page(dashboard), methods=["GET"]),
    Route("/portal/links", page(links, write=True), methods=["GET"]),
    Route("/portal/links", page(build, write=True), methods=["POST"]),
    Route("/portal/withdrawals", page(withdraw, write=True), methods=["POST"]),
    Route(AGREEMENT_PATH, page(agreement), methods=["GET"]),
    Route(AGREEMENT_PATH, page(accept, write=True), methods=["POST"]),
    Route("/portal/referrals", page(referrals), methods=["GET"]),
    Route("/portal/referrals/{referral_id}", page(referral), methods=["GET"]),
    Route("/portal/transactions", page(transactions), methods=["GET"]),
    Route("/portal/transactions.csv", page(transactions_csv), methods=["GET"]),
    Route("/portal/payouts", page(payouts), methods=["GET"]),
    Route("/portal/settings", page(settings_form), methods=["GET"]),
    Route("/portal/settings", page(settings_save, write=True), methods=["POST"]),
    Route("/portal/materials", page(materials_page), methods=["GET"]),
    Route("/portal/materials/{material_id}", page(material_file), methods=["GET"]),
    Route("/portal/help", page(help_page), methods=["GET"]),
]
