"""/admin/whatif: `hub whatif` as a form. The operator picks a program, writes changed settings
as key=value lines and an optional earning window; the page shows per partner and currency the
current, simulated and difference, the program totals, and a chart of current vs simulated
commission per month. The simulation (`hub.ingest.whatif.run_whatif`) runs in the page's worker
thread on its own read-only connection: the real ledger cannot change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from hub.clock import parse_instant
from hub.db.models import Partner
from hub.errors import StartupError
from hub.ingest.whatif import WhatIfResult, run_whatif
from hub.money import format_money
from hub.web import trends
from hub.web.admin import page
from hub.web.charts import comparison_chart
from hub.web.pages import View, render


class FormError(ValueError):
    """Something the operator typed that cannot be simulated; the message names the key."""


@dataclass
class WhatIfForm:
    program: str = ""
    settings: str = ""
    since: str = ""
    until: str = ""
    changes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def posted(cls, view: View) -> WhatIfForm:
        return cls(program=view.value("program"), settings=view.value("settings"),
                   since=view.value("since"), until=view.value("until"))


def parse_settings(text: str) -> dict[str, str]:
    """key=value per line (blank lines and # comments skipped), as `hub whatif --set`."""
    changes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormError(f"settings line {number} ({line!r}): expected key=value, "
                            f"e.g. rate=0.25")
        changes[key.strip()] = value.strip()
    return changes


def parse_day(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        raise FormError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def form_page(view: View) -> Response:
    """The empty form."""
    return _render(view, WhatIfForm(program=view.query("program")), None, None)


def simulate(view: View) -> Response:
    """Run the what-if for the posted form; a bad key or value is a 422 naming it."""
    form = WhatIfForm.posted(view)
    try:
        form.changes = parse_settings(form.settings)
        since, until = parse_day(form.since, "since"), parse_day(form.until, "until")
        result = run_whatif(view.hub, form.program, form.changes, since=since, until=until)
    except (FormError, StartupError) as exc:
        return _render(view, form, None, str(exc).removeprefix("--set "), status=422)
    return _render(view, form, result, None)


def _render(view: View, form: WhatIfForm, result: WhatIfResult | None, error: str | None,
            status: int = 200) -> Response:
    context: dict[str, Any] = {"title": "What-if", "form": form, "error": error,
                               "programs": sorted(view.hub.programs), "result": None}
    if result is not None:
        context.update(result=result.to_json(), names=_names(view, result),
                       charts=month_charts(result))
    return render(view, "admin_whatif.html", context, status=status)


def _names(view: View, result: WhatIfResult) -> dict[str, str]:
    ids = sorted({partner_id for partner_id, _ in result.partners})
    rows = view.db.execute(select(Partner.id, Partner.name, Partner.email)
                           .where(Partner.id.in_(ids))).all() if ids else []
    return {pid: name or email for pid, name, email in rows}


def month_charts(result: WhatIfResult) -> list[tuple[str, Markup]]:
    """Per currency: current vs simulated commission per month, earned in the window."""
    currencies = sorted({currency for _, currency in result.months})
    return [(currency, _month_chart(result, currency)) for currency in currencies]


def _month_chart(result: WhatIfResult, currency: str) -> Markup:
    months = sorted(m for m, c in result.months if c == currency)
    totals = [result.months[(m, currency)] for m in months]

    def fmt(amount: int) -> str:
        return format_money(amount, currency)

    return comparison_chart([trends.month_name(m) for m in months],
                            [("current", [t.current for t in totals]),
                             ("simulated", [t.simulated for t in totals])],
                            f"Commission per month in {currency}: current and simulated", fmt)


ROUTES = [
    Route("/admin/whatif", page(form_page), methods=["GET"]),
    Route("/admin/whatif", page(simulate), methods=["POST"]),
]
