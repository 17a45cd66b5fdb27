"""The floor of the stack for webhook ingest: verify the Stripe signature, insert the event row
(ON CONFLICT DO NOTHING), answer 200. Same Starlette + uvicorn + SQLAlchemy + psycopg as the hub.

Run: python benchmarks/reference_app.py DATABASE_URL SECRET PORT [POOL_SIZE]
"""

from __future__ import annotations

import json
import sys

import stripe
import uvicorn
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

URL, SECRET, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
POOL = int(sys.argv[4]) if len(sys.argv) > 4 else 10
# The same pool shape as the hub's engine (hub.db.session.make_engine) for a pool_size of POOL.
engine = create_engine(URL, pool_size=POOL, max_overflow=POOL * 2, pool_pre_ping=True)
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS ref_events (id bigserial PRIMARY KEY, "
                      "provider text NOT NULL, event_id text NOT NULL, type text NOT NULL, "
                      "payload text NOT NULL, UNIQUE (provider, event_id))"))

INSERT = text("INSERT INTO ref_events (provider, event_id, type, payload) "
              "VALUES ('stripe', :id, :type, :payload) ON CONFLICT DO NOTHING")


def store(event: dict, payload: str) -> None:
    with engine.begin() as conn:
        conn.execute(INSERT, {"id": event["id"], "type": event["type"], "payload": payload})


async def webhook(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        stripe.WebhookSignature.verify_header(body.decode(),
                                              request.headers.get("stripe-signature"),
                                              SECRET, 300)
    except Exception:  # noqa: BLE001
        return JSONResponse({"error": "bad signature"}, status_code=400)
    event = json.loads(body)
    await run_in_threadpool(store, event, body.decode())
    return JSONResponse({"received": True})


app = Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
