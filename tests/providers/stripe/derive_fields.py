"""Regenerate `fields.json`: the field names Stripe's own example objects carry, per API version.

Source: the `stripe/openapi` repository's `openapi/fixtures3.json` (MIT, see LICENSE here), as it
stood while each API version was the newest (its last commit before the next version came out).
The full schema (`spec3.json`) is tens of MB; the fixtures hold every field Stripe returns by
default, and nothing Stripe returns only when expanded or included (e.g. `invoice.payments`),
which is exactly what a webhook carries.

    python tests/providers/stripe/derive_fields.py /path/to/stripe-openapi.git

Run from the repository root; it rewrites tests/providers/stripe/fields.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

# Every Stripe API version from 2023-10-16 to the one the pinned `stripe` package sends, with the
# day it came out (the date part of its name). Mirrors connectors/stripe_versions.VERSIONS.
OBJECTS = ("event", "invoice", "line_item", "invoice_payment", "charge", "refund", "dispute",
           "customer", "subscription", "checkout.session")


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], check=True, capture_output=True,
                          text=True).stdout


def fixture_commit(repo: str, following: str | None) -> str:
    """The fixtures as they stood while a version was the newest: the last commit before the
    next version's release, less ten days (Stripe commits a version's fixtures a few days ahead
    of its date); the newest commit for the newest version."""
    args = ["log", "-1", "--format=%H"]
    if following:
        until = date.fromisoformat(following) - timedelta(days=10)
        args.append(f"--until={until.isoformat()}T00:00:00Z")
    return git(repo, *args, "HEAD", "--", "openapi/fixtures3.json").strip()


def fields_at(repo: str, commit: str) -> dict[str, list[str]]:
    resources = json.loads(git(repo, "show", f"{commit}:openapi/fixtures3.json"))["resources"]
    return {name: sorted(resources[name]) for name in OBJECTS if name in resources}


def main(repo: str) -> None:
    root = Path(__file__).resolve().parents[3]
    sys.path.insert(0, str(root))
    from connectors.stripe_versions import VERSIONS  # noqa: PLC0415  (a script, run by hand)

    out: dict[str, object] = {"source": "github.com/stripe/openapi openapi/fixtures3.json",
                              "head": git(repo, "rev-parse", "HEAD").strip(), "versions": {}}
    shapes: dict[str, dict[str, list[str]]] = {}
    for i, version in enumerate(VERSIONS):
        following = VERSIONS[i + 1][:10] if i + 1 < len(VERSIONS) else None
        commit = fixture_commit(repo, following)
        key = commit[:12]
        shapes.setdefault(key, fields_at(repo, commit))
        out["versions"][version] = key  # type: ignore[index]
    out["shapes"] = shapes
    (Path(__file__).parent / "fields.json").write_text(json.dumps(out, indent=1, sort_keys=True)
                                                       + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
