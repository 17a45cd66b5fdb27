"""Canonical e-mail addresses, so that a partner cannot refer itself under a look-alike address.

Mail providers deliver ``Bob@Example.com``, ``bob+promo@example.com`` and ``b.o.b@gmail.com`` to
the same mailbox, and a pasted address may carry spaces, a trailing dot after the domain,
zero-width characters or full-width letters that a reader cannot see. `canonical_email` folds all
of these to one form; `self_referral_reason` compares those forms.
"""

from __future__ import annotations

import re
import unicodedata

# What the hub accepts as an e-mail address (a partner's, a PayPal receiver, a program's
# contact): something@domain.tld, no spaces; delivery is the real check.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Providers whose local part ignores dots (all of them ignore "+tag"), and their aliases.
DOTLESS_DOMAINS = {"gmail.com"}
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
# Invisible characters a copy-paste can carry: NFKC keeps them, so they are removed by category
# ("Cf", format: zero-width space / joiners, BOM, soft hyphen, bidi marks...) and the few
# invisible ones of other categories.
INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f"}


def _visible(text: str) -> str:
    return "".join(ch for ch in text
                   if unicodedata.category(ch) != "Cf" and ch not in INVISIBLE
                   and not ch.isspace())


def canonical_email(address: str) -> str:
    """The mailbox `address` reaches: NFKC, invisible characters and spaces removed,
    case-folded, the ``+tag`` dropped, a trailing dot of the domain dropped, and the provider's own
    rules where known (Gmail ignores dots and answers to googlemail.com too). Text without an
    ``@`` is returned folded the same way."""
    text = unicodedata.normalize("NFKC", _visible(unicodedata.normalize("NFKC", address)))
    text = unicodedata.normalize("NFKC", text.casefold())
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    domain = DOMAIN_ALIASES.get(domain.rstrip("."), domain.rstrip("."))
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_match(partner_email: str | None, customer_email: str | None) -> str | None:
    """Why two addresses are the same person's: ``"same"`` (equal but for case and spaces),
    ``"look-alike"`` (the same mailbox by `canonical_email`), or None."""
    if not partner_email or not customer_email:
        return None
    if partner_email.strip().casefold() == customer_email.strip().casefold():
        return "same"
    if canonical_email(partner_email) == canonical_email(customer_email):
        return "look-alike"
    return None
