"""A year of each program through the HTTP app: signed Stripe events and installs in business
time, `hub tick` every simulated day, every balance checked to the cent at the end; then the same
events through `hub replay`, shuffled and duplicated, ending in the same balances."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.ingest.replay import replay_file
from hub.jobs.tick import run_tick
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.program_scenarios import ALL_PROGRAMS, PLANS, Plan, balances_by_code
from tests.scenario_runner import post_item, write_jsonl


def expected_balances(plan: Plan, actual: dict[str, Any]) -> dict[str, Any]:
    """Every partner the program has: the hand-worked ones, and nothing for the rest."""
    assert set(plan.expected) <= set(actual), (
        f"missing partners: {set(plan.expected) - set(actual)}")
    return {code: plan.expected.get(code, (0, 0, 0, 0, 0)) for code in actual}


def earned(balances: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(pending, released, voided): what was earned, whatever payouts have done with it since.
    Payouts depend on when ticks ran, which a replay (one tick at the end) does not repeat."""
    return {code: (b[0], b[1] + b[2] + b[3], b[4]) for code, b in balances.items()}


def live_run(make_hub: Any, backend: str, plan: Plan) -> tuple[Any, dict[str, Any]]:
    hub = make_hub(backend, programs={plan.program: {"plugin": plan.program}})
    with TestClient(create_app(hub)) as client:
        plan.setup(client)
        started = time.perf_counter()
        ticks = plan.scenario().run(client, hub, plan.start, plan.end)
        elapsed = time.perf_counter() - started
        assert ticks >= 365
        return hub, {"balances": balances_by_code(client, plan), "seconds": elapsed}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_a_year_of_the_program_ends_in_the_hand_worked_balances(make_hub, backend, name):
    plan = PLANS[name]
    _, live = live_run(make_hub, backend, plan)
    assert live["balances"] == expected_balances(plan, live["balances"])
    print(f"{name} on {backend}: a year in {live['seconds']:.2f}s")


def shuffled_with_duplicates(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = events + rng.sample(events, k=max(1, len(events) // 4))
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("name", sorted(PLANS))
def test_replay_in_any_order_ends_as_the_live_run(make_hub, backend, tmp_path, name):
    """The live run ends in `plan.expected` (the test above); so must the replay."""
    plan = PLANS[name]
    sc = plan.scenario()
    path = tmp_path / "events.jsonl"
    write_jsonl(path, shuffled_with_duplicates(sc.stripe_events(), seed=len(name)))
    hub = make_hub(backend, programs=ALL_PROGRAMS)
    with TestClient(create_app(hub)) as client:
        plan.setup(client)
        for install in sc.installs():  # installs are not provider events: the installer re-sends
            post_item(client, (plan.start, 0, "install", install))
        stats = replay_file(hub, str(path), progress=False)
        assert stats["errors"] == 0 and stats["duplicates"] > 0
        run_tick(hub, plan.end)
        replayed = balances_by_code(client, plan)
        assert earned(replayed) == earned(expected_balances(plan, replayed))


def test_replay_and_tick_through_the_cli_against_a_sqlite_file(make_hub, tmp_path):
    """`hub replay FILE` and `hub tick --now` as an operator runs them, on the callpage year."""
    plan = PLANS["callpage"]
    db = tmp_path / "cli.db"
    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n'
                      f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
                      f'[connectors.stripe]\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
                      '[programs.callpage]\nplugin = "callpage"\n')
    hub = make_hub("sqlite", programs={"callpage": {"plugin": "callpage"}},
                   database={"url": f"sqlite:///{db}"})
    with TestClient(create_app(hub)) as client:
        plan.setup(client)
    events = tmp_path / "events.jsonl"
    write_jsonl(events, shuffled_with_duplicates(plan.scenario().stripe_events(), seed=7))
    run_cli(tmp_path, "replay", str(events), "--quiet", "--config", str(config))
    midyear = run_cli(tmp_path, "tick", "--config", str(config), "--now", "2025-07-01T00:00:00Z")
    assert '"released"' in midyear
    run_cli(tmp_path, "tick", "--config", str(config), "--now", plan.end.isoformat())
    with TestClient(create_app(hub)) as client:
        replayed = balances_by_code(client, plan)
        assert earned(replayed) == earned(expected_balances(plan, replayed))


def run_cli(cwd: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True,
                            text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout
