"""Every operation of the app's own /openapi.json, fuzzed with schemathesis in-process (ASGI, no
network), with the operator token (the installer token for installs and signups): valid and
invalid bodies, paths and queries. No answer may be a 5xx, and none may take long.

`FUZZ_EXAMPLES` (env) sets the examples per operation and generation mode (default 12; CI 12);
the test prints how many requests it sent. The portal's and admin's pages and forms, signed in,
are fuzzed by `tests/test_fuzz_pages.py`."""

from __future__ import annotations

import os
import time
from typing import Any

import respx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from hub.app import create_app
from tests.conftest import ADMIN_TOKEN, INSTALLER_TOKEN
from tests.stripe_helpers import create_partner

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
INSTALLER_PATHS = ("/api/v1/installs", "/api/v1/signups")  # the product's token, not the operator's
SLOW = 2.0  # seconds: anything slower is a hang for an in-process request on a tiny database


def test_no_operation_answers_5xx_or_hangs(make_hub, tmp_path):
    hub = make_hub(server={"materials_dir": str(tmp_path / "m"), "max_body_bytes": 64_000},
                   programs={"crazycall": {"plugin": "crazycall"},
                             "odoopbx": {"plugin": "odoopbx"},
                             "calltrackingmetrics": {"plugin": "calltrackingmetrics"}},
                   downloads={"odoopbx": {"archive": str(_archive(tmp_path))}})
    app = create_app(hub)
    from starlette.testclient import TestClient
    with TestClient(app) as c:
        create_partner(c, email="ann@partners.test", code="ann-code")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 70
    sent, failures = [0], []
    with respx.mock(assert_all_called=False) as net:
        net.route().respond(200, json={})  # outgoing webhooks and lookups never leave
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(op, mode, sent, failures)
    print(f"\nfuzz: {sent[0]} requests over {len(operations)} operations")
    assert not failures, failures[:10]
    assert sent[0] >= len(operations) * 2


def _fuzz(op: Any, mode: Any, sent: list[int], failures: list[Any]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        start = time.monotonic()
        token = INSTALLER_TOKEN if op.path in INSTALLER_PATHS else ADMIN_TOKEN
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - start
        sent[0] += 1
        if response.status_code >= 500 or elapsed > SLOW:
            failures.append((op.label, response.status_code, round(elapsed, 2),
                             repr(case.path_parameters), repr(case.query), repr(case.body)[:300],
                             response.text[:200]))

    try:
        run()
    except Exception as exc:  # noqa: BLE001 - a strategy that cannot generate is not a failure
        if "Unsatisfiable" not in type(exc).__name__:
            raise


def _archive(tmp_path: Any) -> Any:
    import zipfile

    path = tmp_path / "odoopbx.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("odoopbx/__manifest__.py", "{'name': 'OdooPBX'}\n")
    return path
