"""The operator admin under /admin: the admin token, exchanged once for a session cookie, opens
pages over every program's partners. Every action is recorded in the audit log."""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hub.api.track import script_snippet
from hub.attribution import passwords
from hub.attribution.partners import TRANSITIONS, create_partner, get_partner, transition
from hub.clock import parse_instant, utcnow
from hub.db.audit import record_action
from hub.db.models import Commission, Material, Partner, Payout, new_id
from hub.errors import Forbidden, HTTPError, NotFound, Unprocessable
from hub.facts import DEFAULT_PROVIDER
from hub.ingest.assignments import assign
from hub.ledger import entries as ledger
from hub.ledger.explain import explain_commission
from hub.money import format_money
from hub.notify import notices
from hub.notify.webhooks import replay as replay_delivery
from hub.payouts import payee
from hub.payouts.states import operator_action
from hub.web import admin_data as data
from hub.web import charts, materials
from hub.web.csv_cells import csv_lines
from hub.web.pages import Redirect, View, login_url, page_number, safe_next, serve
from hub.web.program_health import Money as HealthMoney
from hub.web.program_health import program_health
from hub.web.security import ADMIN, close_login, fingerprint, login_alive, open_login
from hub.web.throttle import client_address, throttle_of

ACTOR = "operator"
OPERATOR = "operator"  # the subject of the admin's server-side sessions
EXPLAINED = 20  # newest lines shown with their whole derivation inline; the rest link to it


def _admin_token(view: View) -> str:
    token = view.hub.config.server.admin_token
    return str(getattr(token, "value", token) or "")


def signed_in_operator(view: View) -> None:
    token = _admin_token(view)
    if not token:
        raise Forbidden("operator access is disabled: set [server] admin_token (HUB_ADMIN_TOKEN)")
    if (not view.session.data.get("op") or view.session.data.get("tv") != fingerprint(token)
            or not login_alive(view.db, view.session, OPERATOR)):
        raise Redirect(login_url(ADMIN, view.request))


def page(handler: Any, write: bool = False) -> Any:
    return serve(ADMIN, handler, guard=signed_in_operator, write=write)


def public(handler: Any, write: bool = False) -> Any:
    return serve(ADMIN, handler, guard=None, write=write)


def _page_number(view: View) -> int:
    return page_number(view.query("page", "1"))


def _pages(total: int) -> int:
    return max((total + data.PAGE_SIZE - 1) // data.PAGE_SIZE, 1)


def login_form(view: View) -> Response:
    """The operator log-in: the admin token, once."""
    return view.page("admin_login.html", title="Operator log-in", next=view.query("next"))


def login(view: View) -> Response:
    token = _admin_token(view)
    throttle, address = throttle_of(view.hub), client_address(view.request)
    throttle.check(ADMIN.name, OPERATOR, address)  # before any work: 429 with Retry-After
    if not token or not hmac.compare_digest(view.value("token").encode(), token.encode()):
        throttle.failed(ADMIN.name, OPERATOR, address)
        view.flash("That is not the admin token.", "error")
        return login_form(view)
    open_login(view.db, view.session, OPERATOR, op=True, tv=fingerprint(token))
    raise Redirect(safe_next(view.value("next"), ADMIN))


def logout(view: View) -> Response:
    """End the operator's session, here and on the server."""
    close_login(view.db, view.session)
    raise Redirect("/admin/login")


def overview(view: View) -> Response:
    """The operator's home: each program's health per currency (`hub.web.program_health`),
    with its charts."""
    programs = program_health(view.hub, view.db, utcnow().date())
    return view.page("admin_overview.html", title="Programs", programs=programs,
                     applied=sum(p.applications for p in programs),
                     revenue_charts={(p.name, m.currency): _revenue_chart(p.name, m)
                                     for p in programs for m in p.money},
                     funnel_charts={p.name: charts.bar_chart(
                         p.funnel.steps(), f"{p.name}: the last 30 days' funnel")
                         for p in programs})


def _revenue_chart(program: str, money: HealthMoney) -> Any:
    def fmt(amount: int) -> str:
        return format_money(amount, money.currency)

    return charts.bar_chart(money.revenue_by_month,
                            f"{program}: revenue from referred customers per month, "
                            f"{money.currency}", fmt)


def partners(view: View) -> Response:
    """Partners with search and filters."""
    filters = {k: view.query(k) for k in ("q", "program", "status", "kind")}
    page_number = _page_number(view)
    rows, total = data.search_partners(view.db, page=page_number, **filters)
    return view.page("admin_partners.html", title="Partners", rows=rows, total=total,
                     filters=filters, page_number=page_number, pages=_pages(total),
                     programs=sorted(view.hub.programs),
                     statuses=["active", "applied", "invited", "declined", "suspended"])


def partner(view: View) -> Response:
    """A partner's full picture: balances, commissions with their explanations, referrals."""
    who = get_partner(view.db, view.request.path_params["partner_id"])
    lines = ledger.commission_lines(view.db, who.id, limit=100)
    return view.page("admin_partner.html", title=who.name or who.email, who=who,
                     balances=ledger.balances(view.db, who.id),
                     lines=lines, explained={v.commission.id: explain_commission(
                         view.hub, view.db, v.commission.id) for v in lines[:EXPLAINED]},
                     referrals=data.partner_referrals(view.db, who.id),
                     referral_count=data.referral_count(view.db, who.id),
                     audit=data.audit_page(view.db, 1, subject=who.id)[0][:20],
                     actions=[a for a, (allowed, _) in TRANSITIONS.items()
                              if who.status in allowed],
                     reset_link=view.session.pop("reset_link"))


def partner_status(view: View) -> Response:
    """approve / decline / suspend / reactivate (audited by `partners.transition`)."""
    partner_id = view.request.path_params["partner_id"]
    action = view.value("action")
    if action not in TRANSITIONS:
        raise Unprocessable("unknown action")
    moved = transition(view.db, partner_id, action, ACTOR)
    view.flash(f"{moved.email} is now {moved.status}.")
    raise Redirect(safe_next(view.value("next"), ADMIN) if view.value("next")
                   else f"/admin/partners/{partner_id}")


def partner_reset_link(view: View) -> Response:
    """A one-time password link for the partner, shown once to the operator to send."""
    who = get_partner(view.db, view.request.path_params["partner_id"])
    token, expires = passwords.create_reset_token(view.db, who.id)
    record_action(view.db, ACTOR, "partner.password_reset_link", who.id,
                  expires_at=expires.isoformat())
    base = view.hub.config.server.base_url.rstrip("/")
    view.session.set(reset_link={"url": f"{base}/portal/reset/{token}",
                                 "expires": expires.strftime("%Y-%m-%d %H:%M UTC")})
    raise Redirect(f"/admin/partners/{who.id}")


def partner_payee(view: View) -> Response:
    """Switch how the partner is paid (PayPal or by hand, with a note of what was agreed), and
    set, confirm or remove its PayPal address: an address the operator enters here counts as
    confirmed by the operator. Audited (`payouts.payee`)."""
    who = get_partner(view.db, view.request.path_params["partner_id"])
    address = view.value("paypal_email").strip()
    try:
        payee.operator_update(
            view.db, who, actor=ACTOR, payout_method=view.value("payout_method") or None,
            paypal_email=None if view.value("remove_paypal") == "on" else address or payee.UNSET,
            note=view.value("note")[:500] or None)
    except HTTPError as exc:
        view.flash(exc.message, "error")
        raise Redirect(f"/admin/partners/{who.id}") from None
    how = "by hand" if who.payout_method == payee.MANUAL else "through PayPal"
    view.flash(f"{who.email} is paid {how}"
               f"{f' ({who.paypal_email}, confirmed)' if payee.state_of(who) == 'ready' else ''}.")
    raise Redirect(f"/admin/partners/{who.id}")


def applications(view: View) -> Response:
    """Partners who applied and wait for approval."""
    rows, total = data.search_partners(view.db, status="applied", page=_page_number(view))
    return view.page("admin_applications.html", title="Applications", rows=rows, total=total)


def invitations(view: View) -> Response:
    """Invite a partner (for programs that admit partners by invitation) and list the invited."""
    rows, total = data.search_partners(view.db, status="invited", page=_page_number(view))
    return view.page("admin_invitations.html", title="Invitations", rows=rows, total=total,
                     programs=sorted(view.hub.programs))


def invite(view: View) -> Response:
    try:
        invited = create_partner(view.hub, view.db, program=view.value("program"),
                                 email=view.value("email"), name=view.value("name"),
                                 kind=view.value("kind") or None, invited=True,
                                 website=view.value("website") or None)
    except HTTPError as exc:
        view.flash(exc.message, "error")
        return invitations(view)
    record_action(view.db, ACTOR, "partner.invite", invited.id, status=invited.status)
    token, expires = passwords.create_reset_token(view.db, invited.id)
    notices.invitation(view.db, invited, token, expires)
    view.flash(f"{invited.email} is invited ({invited.status}); the invitation with a link to "
               "choose a password is on its way by e-mail.")
    raise Redirect(f"/admin/partners/{invited.id}")


def self_referrals(view: View) -> Response:
    """Referrals flagged as a partner referring its own account."""
    return view.page("admin_self_referrals.html", title="Flagged self-referrals",
                     rows=data.flagged_referrals(view.db))


def payouts(view: View) -> Response:
    """Withdrawal requests to approve / reject / mark paid, failures to retry, the manual list."""
    status = view.query("status")
    return view.page("admin_payouts.html", title="Payouts", rows=data.payouts_page(view.db, status),
                     status=status, statuses=PAYOUT_STATUSES,
                     waiting=data.payouts_page(view.db, "requested"),
                     dead=data.dead_letters(view.db), manual=data.manual_list(view.db),
                     actions=PAYOUT_ACTIONS)


PAYOUT_STATUSES = ["requested", "approved", "queued", "sent", "paid", "failed", "returned",
                   "unclaimed", "rejected", "dry_run"]
PAYOUT_ACTIONS = ("approve", "reject", "mark-paid", "retry")


def payout_action(view: View) -> Response:
    """approve / reject / mark-paid (with a reference) / retry, through the payouts core."""
    action = view.request.path_params["action"]
    if action not in PAYOUT_ACTIONS:
        raise NotFound("no such action")
    try:
        payout = operator_action(view.db, view.request.path_params["payout_id"], action, ACTOR,
                                 reference=view.value("reference") or None,
                                 reason=view.value("reason") or None)
    except HTTPError as exc:  # refused before anything changed: say why on the same page
        view.flash(exc.message, "error")
        raise Redirect("/admin/payouts") from None
    view.flash(f"Payout {payout.id} is now {payout.status}.")
    raise Redirect("/admin/payouts")


def attribution(view: View) -> Response:
    """Attach a customer to a partner by hand, or reassign it from a moment on."""
    return view.page("admin_attribution.html", title="Manual attribution",
                     providers=sorted(view.hub.registry.connectors),
                     recent=data.manual_referrals(view.db))


def attribute(view: View) -> Response:
    try:
        # a savepoint, not a rollback of the page's transaction: the form is shown again with
        # the reason, which needs the session (a rollback closed it: a 500 for a mistyped id)
        with view.db.begin_nested():
            partner = get_partner(view.db, view.value("partner_id"))
            at = _instant(view.value("effective_from"))
            provider = view.value("provider") or DEFAULT_PROVIDER
            if provider not in view.hub.registry.connectors:
                raise Unprocessable("unknown provider")
            if not view.value("customer_ref"):
                raise Unprocessable("the customer reference is required")
            referral, outcome = assign(view.hub, view.db, partner, provider=provider,
                                       customer_ref=view.value("customer_ref"), at=at,
                                       actor=ACTOR, email=view.value("email") or None)
    except HTTPError as exc:
        view.flash(exc.message, "error")
        return attribution(view)
    view.flash(f"Customer {view.value('customer_ref')}: {outcome} to {partner.email}.")
    raise Redirect("/admin/attribution")


def _instant(raw: str) -> Any:
    if not raw:
        return utcnow()
    try:
        at = parse_instant(raw if len(raw) > 16 or "T" not in raw else raw + ":00")
    except ValueError:
        raise Unprocessable("effective from must be a date and time") from None
    return at


def webhooks(view: View) -> Response:
    """Outgoing webhook endpoints and the delivery log, with replay."""
    status = view.query("status")
    return view.page("admin_webhooks.html", title="Webhooks", status=status,
                     endpoints=data.webhook_endpoints(view.db),
                     rows=data.deliveries_page(view.db, status))


def webhook_replay(view: View) -> Response:
    delivery = replay_delivery(view.db, view.request.path_params["delivery_id"])
    if delivery is None:
        raise NotFound("no such delivery")
    record_action(view.db, ACTOR, "webhook.replay", delivery.id, event_id=delivery.event_id)
    view.flash(f"Delivery {delivery.id} ({delivery.event_type}) is queued again.")
    raise Redirect("/admin/webhooks")


def audit(view: View) -> Response:
    """Who did what, when."""
    page_number = _page_number(view)
    rows, total = data.audit_page(view.db, page_number, subject=view.query("subject"))
    return view.page("admin_audit.html", title="Audit log", rows=rows, total=total,
                     page_number=page_number, pages=_pages(total), subject=view.query("subject"))


def materials_page(view: View) -> Response:
    """Upload advertising materials for partners; delete old ones."""
    rows = view.db.scalars(select(Material).order_by(Material.created_at.desc())).all()
    return view.page("admin_materials.html", title="Materials", rows=rows,
                     programs=sorted(view.hub.programs))


def material_upload(view: View) -> Response:
    upload = view.form.get("file") if view.form is not None else None
    if not isinstance(upload, UploadFile) or not upload.filename:
        view.flash("Choose a file to upload.", "error")
        return materials_page(view)
    program = view.value("program") or None
    if program is not None and program not in view.hub.programs:
        raise Unprocessable("unknown program")
    material_id = new_id("mat")
    size = materials.store(view.hub, material_id, upload.file)
    view.db.add(Material(id=material_id, program=program,
                         title=view.value("title") or upload.filename,
                         filename=materials.safe_filename(upload.filename),
                         content_type=(upload.content_type or "application/octet-stream")[:100],
                         size=size, created_at=utcnow()))
    record_action(view.db, ACTOR, "material.upload", material_id, program=program, size=size)
    view.flash("Uploaded.")
    raise Redirect("/admin/materials")


def material_delete(view: View) -> Response:
    material = view.db.get(Material, view.request.path_params["material_id"])
    if material is None:
        raise NotFound("no such material")
    view.db.delete(material)
    materials.remove(view.hub, material.id)
    record_action(view.db, ACTOR, "material.delete", material.id, title=material.title)
    view.flash("Deleted.")
    raise Redirect("/admin/materials")


def tracking(view: View) -> Response:
    """The tracking script for the merchant's site: the snippet and the settings it follows."""
    config = view.hub.config
    return view.page("admin_tracking.html", title="Tracking script",
                     snippet=script_snippet(config), domains=config.server.allowed_domains,
                     params=config.links.track_params, cookie=config.links.track_cookie,
                     windows=sorted((name, p.settings.cookie_days)
                                    for name, p in view.hub.programs.items()))


def exports(view: View) -> Response:
    """CSV exports."""
    return view.page("admin_exports.html", title="Exports", programs=sorted(view.hub.programs))


def export_partners(view: View) -> Response:
    program = view.query("program")
    query = select(Partner).order_by(Partner.created_at)
    if program:
        query = query.where(Partner.program == program)
    rows = ([p.id, p.program, p.kind, p.status, p.code, p.email, p.name, p.paypal_email or "",
             p.website or "", p.created_at.isoformat()] for p in view.db.scalars(query))
    record_action(view.db, ACTOR, "export.partners", program or "*")
    header = ["id", "program", "kind", "status", "code", "email", "name", "paypal_email",
              "website", "created_at"]
    return _csv("partners.csv", header, list(rows))


def export_commissions(view: View) -> Response:
    program = view.query("program")
    query = select(Commission).order_by(Commission.created_at, Commission.id)
    if program:
        query = query.where(Commission.program == program)
    rows = [[c.id, c.program, c.partner_id, c.amount, c.currency, c.earned_at.isoformat(),
             c.available_at.isoformat(), c.reverses_id or "", c.key,
             (c.rule or {}).get("sentence", "")]
            for c in view.db.scalars(query)]
    record_action(view.db, ACTOR, "export.commissions", program or "*")
    header = ["id", "program", "partner_id", "amount_minor", "currency", "earned_at",
              "available_at", "reverses", "key", "explanation"]
    return _csv("commissions.csv", header, rows)


def export_payouts(view: View) -> Response:
    program = view.query("program")
    query = select(Payout).order_by(Payout.created_at, Payout.id)
    if program:
        query = query.where(Payout.program == program)
    rows = [[p.id, p.program, p.partner_id, p.amount, p.currency, p.status, p.method,
             p.receiver or "", p.reference or "", p.period or "", p.failure_reason or "",
             p.created_at.isoformat(), p.settled_at.isoformat() if p.settled_at else "",
             p.payee_details or ""]
            for p in view.db.scalars(query)]
    record_action(view.db, ACTOR, "export.payouts", program or "*")
    header = ["id", "program", "partner_id", "amount_minor", "currency", "status", "method",
              "receiver", "reference", "period", "failure_reason", "created_at", "settled_at",
              "payee_details"]
    return _csv("payouts.csv", header, rows)


def _csv(name: str, header: list[str], rows: list[list[Any]]) -> Response:
    filename = f"{name[:-4]}-{utcnow().date().isoformat()}.csv"
    return StreamingResponse(csv_lines(header, rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def home_redirect(view: View) -> Response:
    raise Redirect("/admin/")


ROUTES = [
    Route("/admin", public(home_redirect), methods=["GET"]),
    Route("/admin/login", public(login_form), methods=["GET"]),
    Route("/admin/login", public(login, write=True), methods=["POST"]),
    Route("/admin/logout", public(logout, write=True), methods=["POST"]),
    Route("/admin/", page(overview), methods=["GET"]),
    Route("/admin/partners", page(partners), methods=["GET"]),
    Route("/admin/partners/{partner_id}", page(partner), methods=["GET"]),
    Route("/admin/partners/{partner_id}/status", page(partner_status, write=True),
          methods=["POST"]),
    Route("/admin/partners/{partner_id}/reset-link", page(partner_reset_link, write=True),
          methods=["POST"]),
    Route("/admin/partners/{partner_id}/payee", page(partner_payee, write=True),
          methods=["POST"]),
    Route("/admin/applications", page(applications), methods=["GET"]),
    Route("/admin/invitations", page(invitations), methods=["GET"]),
    Route("/admin/invitations", page(invite, write=True), methods=["POST"]),
    Route("/admin/self-referrals", page(self_referrals), methods=["GET"]),
    Route("/admin/payouts", page(payouts), methods=["GET"]),
    Route("/admin/payouts/{payout_id}/{action}", page(payout_action, write=True), methods=["POST"]),
    Route("/admin/attribution", page(attribution), methods=["GET"]),
    Route("/admin/attribution", page(attribute, write=True), methods=["POST"]),
    Route("/admin/webhooks", page(webhooks), methods=["GET"]),
    Route("/admin/webhooks/{delivery_id}/replay", page(webhook_replay, write=True),
          methods=["POST"]),
    Route("/admin/exports/payouts.csv", page(export_payouts, write=True), methods=["GET"]),
    Route("/admin/audit", page(audit), methods=["GET"]),
    Route("/admin/materials", page(materials_page), methods=["GET"]),
    Route("/admin/materials", page(material_upload, write=True), methods=["POST"]),
    Route("/admin/materials/{material_id}/delete", page(material_delete, write=True),
          methods=["POST"]),
    Route("/admin/exports", page(exports), methods=["GET"]),
    Route("/admin/tracking", page(tracking), methods=["GET"]),
    Route("/admin/exports/partners.csv", page(export_partners, write=True), methods=["GET"]),
    Route("/admin/exports/commissions.csv", page(export_commissions, write=True), methods=["GET"]),
]
