"""Every hook the hub calls, in one place.

Implement them in a plain module with ``@hub.hookimpl`` functions and register the module through
the ``hub`` entry-point group (built-in programs and connectors are registered the same way).
Hooks are called with keyword arguments; an implementation takes only the arguments it needs.

Rule hooks (`commissions_for_*`, `payout_policy`, `new_partner_status`, `link_requirements`,
`auto_enroll_kind`, `self_signup_kind`, `partner_kind_profile`) are called only on the plugin
that registered the program's kind, so an implementation never sees another plugin's programs.
They must be pure: no I/O, no clock; time comes from the fact or the tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from hub.programs import (
    Draft,
    History,
    Install,
    KindProfile,
    Payment,
    PayoutPolicy,
    Program,
    ProgramKind,
    Referral,
    TickContext,
)

hookspec = pluggy.HookspecMarker("hub")


@hookspec
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    """Called once at start-up. Call ``register(ProgramKind(...))`` for each program variant this
    plugin offers; operators enable it as ``[programs.<name>] plugin = "<kind name>"``."""


@hookspec
def register_connectors(register: Callable[[Any], None]) -> None:
    """Called once at start-up. Call ``register(Connector(...))`` (see `hub.registry`) for each
    payment provider this plugin connects: its name and its webhook routes."""


@hookspec
def register_commands(command: Callable[..., Any]) -> None:
    """Called when the `hub` command line is built. Call ``command(name, func, help)`` to add a
    sub-command: it returns the `argparse` parser of the new command (with ``--config`` already
    on it) for your options, and ``func(args)`` runs it and returns the exit status. The Stripe
    connector adds ``hub trigger`` this way."""


@hookspec
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft] | None:
    """A referred customer paid. Return the commission lines the program earns for this payment
    (empty or None for none). Refunds and disputes are reversed by the core, pro rata."""


@hookspec
def commissions_for_install(program: Program, install: Install, referral: Referral,
                            history: History) -> list[Draft] | None:
    """A referred account reported an installation (a widget on a site, a module). Return the
    lines it earns; the `key` decides what counts as the same install (e.g. account + site)."""


@hookspec
def commissions_for_tick(program: Program, referral: Referral, history: History,
                         tick: TickContext) -> list[Draft] | None:
    """Time passed (``hub tick``). Return lines that became due by ``tick.now`` (milestones such as
    "90 days active"). Called for every referral of the program, so return quickly. The key makes
    a line idempotent (e.g. ``"bounty:<customer>"``): return it again on every later tick and the
    core books it once. ``tick`` carries the partner's active referral counts per month."""


@hookspec(firstresult=True)
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy | None:
    """How partners of this kind in this program are paid: a `PayoutPolicy` (automatic at a
    threshold, on request, monthly, manual list). Asked by the payout code whenever it decides
    (hold release, withdrawal request, `hub tick`); None means "on request", no minimum."""


@hookspec(firstresult=True)
def new_partner_status(program: Program, partner_kind: str, invited: bool) -> str | None:
    """The status a new partner starts in: ``active``, or ``applied`` where an operator approves
    first. None leaves the core's default (``active``)."""


@hookspec(firstresult=True)
def auto_enroll_kind(program: Program) -> str | None:
    """Asked when the hub first sees a customer (with an email). Return a partner kind to make
    every customer of this program a referrer of that kind without applying (an "ambassador"),
    or None. The membership is created once per customer, active, with the customer's own
    reference, so that referring itself is caught as self-referral."""


@hookspec(firstresult=True)
def self_signup_kind(program: Program) -> str | None:
    """The partner kind a self sign-up on the portal (``/portal/signup``) creates, or None for the
    program's first kind. E.g. a program whose partners are invited but whose referrals sign up
    themselves answers the referrals' kind."""


@hookspec(firstresult=True)
def partner_kind_profile(program: Program, partner_kind: str) -> KindProfile | None:
    """What partners of this kind see and are offered (customer names, public directory listing,
    support routing) for the portal and public pages. None: the defaults of `KindProfile`."""


@hookspec
def link_requirements(program: Program) -> list[str] | None:
    """What a partner must have done before its links credit anyone, e.g. ``["agreement"]``."""


@hookspec
def routes(hub: Any) -> list[Any] | None:
    """Extra Starlette routes to mount (public pages such as a partner directory)."""
