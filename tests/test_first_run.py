"""Tried as a new user would (issue 18, section 4): the README's walkthrough and the docs'
examples run as written on whatever day it is, every CLI option explains itself, `hub serve
--port` builds links on that port, and a pipe closed early ends without a traceback."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from connectors import stripe_trigger
from hub import __version__, cli
from hub.api.track import script_snippet
from hub.app import build_hub, create_app
from hub.attribution.partners import create_partner as core_create_partner
from hub.config import load_config
from hub.db.models import Partner
from hub.errors import Conflict
from tests.conftest import WEBHOOK_SECRET, LiveServer, operator_headers
from tests.stripe_helpers import create_partner
from tests.test_browser import browser  # noqa: F401 - the shared Chromium fixture
from tests.web_helpers import give_password, portal_login

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
WHATIF_DOC = (ROOT / "docs" / "explain-whatif.md").read_text()


def sh_lines(markdown: str) -> list[str]:
    """The command lines of a page's ```sh blocks (continuations joined, comments dropped)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.strip())
    return lines


def run_hub(line: str, capsys: Any) -> tuple[int, str]:
    argv = shlex.split(line)
    assert argv[0] == "hub", line
    capsys.readouterr()
    code = cli.main(argv[1:])
    return code, capsys.readouterr().out


@pytest.fixture
def walkthrough(tmp_path, monkeypatch):
    """The README's walkthrough set-up: its hub.toml, its exported variables, a running app."""
    monkeypatch.chdir(tmp_path)
    toml = re.search(r"cat > hub.toml <<'TOML'\n(.*?)\nTOML\n", README, re.S)
    assert toml, "the README writes hub.toml with a heredoc"
    (tmp_path / "hub.toml").write_text(toml.group(1) + "\n")
    for line in sh_lines(README):
        if line.startswith("export "):
            for pair in shlex.split(line)[1:]:
                name, _, value = pair.partition("=")
                monkeypatch.setenv(name, value)
    for name in ("HUB_CONFIG", "HUB_DATABASE_URL", "HUB_BASE_URL", "HUB_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    hub = build_hub(load_config("hub.toml"))
    with TestClient(create_app(hub)) as client:
        def post(url: str, *, content: str, headers: dict[str, str], timeout: float) -> Any:
            assert url == "http://127.0.0.1:8000/webhooks/stripe"  # the configured server
            return client.post("/webhooks/stripe", content=content, headers=headers)

        monkeypatch.setattr(stripe_trigger.httpx, "post", post)
        yield client
    hub.engine.dispose()


def test_readme_walkthrough_tick_and_whatif_examples_work_today(walkthrough, capsys):
    client = walkthrough
    token = {"Authorization": "Bearer dev-admin-token"}
    body = json.loads(re.search(r"-d '(\{.*?\})'", README).group(1))
    partner = client.post("/api/v1/partners", json=body, headers=token).json()
    commands = [line for line in sh_lines(README) if line.startswith("hub ")
                and not line.startswith("hub serve")]
    assert [c.split()[1] for c in commands] == [
        "trigger", "trigger", "trigger", "tick", "whatif", "whatif"]
    outputs = []
    for line in commands:
        code, out = run_hub(line.replace("k7tq2mxd", partner["code"]), capsys)
        assert code == 0, (line, out)
        outputs.append(out)
    tick = json.loads(outputs[3])
    assert tick["holds"]["released"] >= 1, tick
    balances = client.get(f"/api/v1/partners/{partner['id']}", headers=token).json()["balances"]
    assert [(b["currency"], b["pending"], b["payable"]) for b in balances] == [("USD", 0, 784)]
    assert "+$1.96" in outputs[4]  # 25% instead of 20% of what is left of $49.00 after the refund
    assert json.loads(outputs[5])["partners"][0]["partner_id"] == partner["id"]
    # The examples of docs/explain-whatif.md run as written too.
    for line in [x for x in sh_lines(WHATIF_DOC) if x.startswith("hub whatif")]:
        code, out = run_hub(line, capsys)
        assert code == 0 and partner["id"] in out, line


def walk(parser: argparse.ArgumentParser, path: str = "hub") -> list[tuple[str, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((f"{path} {name}", helps.get(name) or ""))
                found.extend(walk(sub, f"{path} {name}"))
            continue
        found.append((f"{path} {'/'.join(action.option_strings) or action.dest}",
                      action.help or ""))
    return found


def test_every_command_and_option_has_help_text():
    options = walk(cli.parser())
    names = {name for name, _ in options}
    assert {"hub trigger --url", "hub serve --port", "hub worker --threads", "hub --version",
            "hub tick --now"} <= names
    assert [name for name, text in options if len(text.strip()) < 8] == []


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"hub {__version__}"


def test_trigger_url_defaults_to_the_configured_server(tmp_path, monkeypatch):
    config = tmp_path / "hub.toml"
    config.write_text('[server]\nbase_url = "https://partners.example.com/"\n'
                      '[connectors.stripe]\nwebhook_secret = "whsec_x"\n')
    posted = []

    class Answer:
        status_code = 200

        def json(self) -> dict[str, Any]:
            return {"received": True}

    monkeypatch.setattr(stripe_trigger.httpx, "post",
                        lambda url, **kw: posted.append(url) or Answer())
    assert cli.main(["--config", str(config), "trigger", "customer.created"]) == 0
    assert cli.main(["--config", str(config), "trigger", "customer.created",
                     "--url", "http://127.0.0.1:9999"]) == 0
    assert posted == ["https://partners.example.com/webhooks/stripe",
                      "http://127.0.0.1:9999/webhooks/stripe"]


def test_serve_on_another_port_builds_links_and_redirects_on_it(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_BASE_URL", raising=False)
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/hub.db"\n'
                      '[programs.crazycall]\nplugin = "crazycall"\n')
    args = cli.parser().parse_args(["--config", str(config), "serve", "--port", "8101"])
    served = cli.serve_config(args)
    assert served.server.base_url == "http://127.0.0.1:8101"
    hub = build_hub(served)
    with TestClient(create_app(hub)) as client:
        landing = client.get("/r/nobody", follow_redirects=False)
        assert landing.headers["location"] == "http://127.0.0.1:8101/"
        assert script_snippet(hub.config).startswith('<script src="http://127.0.0.1:8101/track.js')
    hub.engine.dispose()
    wildcard = cli.parser().parse_args(["--config", str(config), "serve", "--host", "0.0.0.0",
                                        "--port", "8101"])
    assert cli.serve_config(wildcard).server.base_url == "http://127.0.0.1:8101"
    # A configured base_url (file or HUB_BASE_URL) wins over the port.
    monkeypatch.setenv("HUB_BASE_URL", "https://partners.example.com")
    assert cli.serve_config(args).server.base_url == "https://partners.example.com"
    monkeypatch.delenv("HUB_BASE_URL")
    config.write_text(config.read_text() + '[server]\nbase_url = "https://hub.example.com"\n')
    assert cli.serve_config(args).server.base_url == "https://hub.example.com"


def test_relative_now_and_a_bad_one(capsys):
    assert cli._instant("+31d", "--now") > cli._instant("+30d", "--now")
    with pytest.raises(Exception, match=r"\+31d"):
        cli._instant("tomorrow", "--now")


def test_output_cut_short_by_a_pipe_ends_quietly(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/hub.db"\n'
                      '[programs.crazycall]\nplugin = "crazycall"\n')
    subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(config), "migrate"],
                   check=True, capture_output=True, timeout=120, cwd=ROOT)
    # The reader goes away before the hub writes a byte (as `| head` does after its lines).
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "--config", str(config), "whatif",
                             "--program", "crazycall", "--set", "rate=0.25", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_broken_pipe_in_process_is_not_an_error(monkeypatch):
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Gone())
    monkeypatch.setattr(cli, "cmd_migrate", lambda args: print("x") or 0)
    args = cli.parser().parse_args(["migrate"])
    args.func = cli.cmd_migrate
    monkeypatch.setattr(cli, "parser", lambda: argparse.Namespace(parse_args=lambda argv: args))
    assert cli.main([]) == 141


def test_the_front_door_links_log_in_sign_up_and_public_directories(make_hub):
    hub = make_hub(programs={"crazycall": {"plugin": "crazycall"},
                             "odoopbx": {"plugin": "odoopbx", "currency": "EUR"}})
    with TestClient(create_app(hub)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        links = re.findall(r'href="([^"]+)"', page.text.split('data-testid="home-links"')[1])
        assert links[:4] == ["/portal/login", "/portal/signup", "/partners/odoopbx", "/admin/"]
        for link in links[:3]:
            assert client.get(link).status_code == 200, link
    closed = make_hub(programs={"crazycall": {"plugin": "crazycall", "self_signup": False}})
    with TestClient(create_app(closed)) as client:
        text = client.get("/").text
        assert "/portal/login" in text and "/portal/signup" not in text
        assert "/partners/" not in text


def test_favicon_is_a_16px_icon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    data = icon.content
    assert data[:6] == b"\x00\x00\x01\x00\x01\x00"  # ICO, one image
    assert (data[6], data[7]) == (16, 16)
    assert len(data) == 22 + 40 + 16 * 16 * 4 + 16 * 4


@pytest.mark.browser
def test_favicon_and_front_door_in_chromium(browser, make_hub):  # noqa: F811
    hub = make_hub()
    with LiveServer(hub) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        assert page.get_by_role("link", name="Log in to the partner portal").is_visible()
        size = page.evaluate("""() => new Promise(done => { const i = new Image();
            i.onload = () => done([i.naturalWidth, i.naturalHeight]); i.onerror = () => done(null);
            i.src = '/favicon.ico'; })""")
        assert size == [16, 16]
        page.close()


def test_sqlite_side_files_are_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "hub.db-wal", "hub.db-shm", "x/y.db-wal"],
                             cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["hub.db-wal", "hub.db-shm", "x/y.db-wal"]


def test_link_builder_names_the_setting_when_no_domain_is_allowed(make_hub):
    hub = make_hub(server={"allowed_domains": []})
    with TestClient(create_app(hub)) as client:
        partner = create_partner(client)
        refused = client.post(f"/api/v1/partners/{partner['id']}/links",
                              json={"destination": "https://example.com/x"},
                              headers=operator_headers())
        assert refused.status_code == 422
        assert "[server] allowed_domains" in refused.json()["error"]["message"]
        give_password(hub, partner["id"])
        portal_login(client, "ann@partners.test")
        page = client.get("/portal/links").text
        assert 'data-testid="no-domains"' in page and "[server] allowed_domains" in page
    allowed = make_hub()
    with TestClient(create_app(allowed)) as client:
        partner = create_partner(client)
        give_password(allowed, partner["id"])
        portal_login(client, "ann@partners.test")
        page = client.get("/portal/links").text
        assert 'data-testid="no-domains"' not in page and "On example.com." in page
        off = client.post(f"/api/v1/partners/{partner['id']}/links",
                          json={"destination": "https://evil.test/"}, headers=operator_headers())
        assert "example.com; [server] allowed_domains" in off.json()["error"]["message"]


def test_a_second_partner_with_the_same_email_in_one_program_is_a_409(make_hub, backend):
    hub = make_hub(backend, programs={"crazycall": {"plugin": "crazycall"},
                                      "callpage": {"plugin": "callpage"}})
    with TestClient(create_app(hub)) as client:
        first = create_partner(client, email="ann@partners.test")
        again = client.post("/api/v1/partners", json={
            "program": "crazycall", "email": "ANN@Partners.test", "name": "Ann again"},
            headers=operator_headers())
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "email_taken"
        assert first["id"] in again.json()["error"]["message"]
        # Another program may have the same person.
        create_partner(client, program="callpage", email="ann@partners.test")
        listed = client.get("/api/v1/partners?program=crazycall", headers=operator_headers())
        assert [p["email"] for p in listed.json()["items"]] == ["ann@partners.test"]


def test_concurrent_creations_with_one_email_make_one_partner(make_hub, backend):
    hub = make_hub(backend)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def create(i: int) -> None:
        barrier.wait()
        try:
            with hub.transaction() as session:
                core_create_partner(hub, session, program="crazycall",
                                    email="race@partners.test", name=f"racer {i}")
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")
        except OperationalError:  # SQLite: the losing writer is told the database is busy
            outcomes.append("busy")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("created") == 1, outcomes
    with hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Partner).where(
            Partner.email == "race@partners.test")) == 1


def test_a_bad_signature_webhook_is_logged_at_the_default_level_without_secrets(client, caplog):
    evt = stripe_trigger.event("invoice.paid", stripe_trigger.invoice(
        "in_forged", customer_id="cus_forged", amount=4900))
    body, headers = stripe_trigger.signed_request(evt, "whsec_the_wrong_one_" + "y" * 20)
    caplog.set_level(logging.WARNING)  # Python's default level: nothing turned up
    refused = client.post("/webhooks/stripe", content=body, headers=headers)
    assert refused.status_code == 400
    lines = [r for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    text = lines[0].getMessage()
    assert "invalid Stripe signature" in text and "bad_signature" in text
    signature = headers["Stripe-Signature"].split("v1=")[1]
    for secret in (WEBHOOK_SECRET, "whsec_the_wrong_one", signature, "in_forged"):
        assert secret not in caplog.text
    caplog.clear()
    paypal = json.dumps({"id": "WH-1", "event_type": "PAYMENT.SALE.COMPLETED"})
    assert client.post("/webhooks/paypal", content=paypal).status_code in (400, 503)
    assert [r.levelno for r in caplog.records if "paypal webhook" in r.getMessage()] == [
        logging.WARNING]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("HUB_TEST_DATABASE_URL", "HUB_TEST_REQUIRE_ALL", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**environ, **env})


def test_a_missing_service_is_a_skip_with_its_reason_and_a_failure_when_all_are_required():
    target = "tests/test_first_run.py::test_favicon_is_a_16px_icon"
    redis_test = ("tests/test_payouts_redis.py::"
                  "test_an_odoopbx_like_referral_crossing_100_eur_is_paid_once")
    relaxed = _pytest(target, redis_test, HUB_TEST_REDIS_URL="redis://127.0.0.1:1/0")
    assert relaxed.returncode == 0, relaxed.stdout
    assert "SKIPPED" in relaxed.stdout  # -rs from the project's pytest settings
    assert "set HUB_TEST_DATABASE_URL" in relaxed.stdout
    assert "needs Redis: none at redis://127.0.0.1:1/0" in relaxed.stdout
    strict = _pytest(target, redis_test, HUB_TEST_REDIS_URL="redis://127.0.0.1:1/0",
                     HUB_TEST_REQUIRE_ALL="1")
    assert strict.returncode == 1, strict.stdout
    assert "skipped" not in strict.stdout.splitlines()[-1], strict.stdout
    assert "HUB_TEST_REQUIRE_ALL=1" in strict.stdout
    # the favicon's SQLite variant passes; its PostgreSQL one and both Redis ones error in setup
    assert strict.stdout.splitlines()[-1].startswith("1 passed, 3 errors"), strict.stdout[-500:]


def test_ci_requires_every_test_to_run():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export HUB_TEST_REQUIRE_ALL=1" in ci
    assert ci.index("HUB_TEST_REQUIRE_ALL=1") < ci.rindex("python -m pytest")
