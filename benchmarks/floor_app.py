"""The floor of the stack for webhook ingest: Starlette + uvicorn, psycopg's async pool, Stripe's
`verify_header`, one `INSERT ... ON CONFLICT DO NOTHING` per event. No ORM, no thread pool: the
least any hub on this stack can do to store a signed event durably before answering 200.

Run: python benchmarks/floor_app.py DATABASE_URL SECRET PORT [MAX_CONNECTIONS]
(DATABASE_URL: a plain ``postgresql://`` URL; a ``+psycopg`` driver suffix is dropped.)
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import stripe
import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

URL, SECRET, PORT = sys.argv[1].replace("+psycopg", ""), sys.argv[2], int(sys.argv[3])
MAX = int(sys.argv[4]) if len(sys.argv) > 4 else 8
# libpq takes `options` (the benchmark's search_path) from the URL itself.
_query = parse_qs(urlsplit(URL).query)
SCHEMA = (_query.get("options", [""])[0].split("search_path=")[-1] or "public")

CREATE = ("CREATE TABLE IF NOT EXISTS floor_events (id bigserial PRIMARY KEY, "
          "provider text NOT NULL, event_id text NOT NULL, type text NOT NULL, "
          "payload text NOT NULL, UNIQUE (provider, event_id))")
INSERT = ("INSERT INTO floor_events (provider, event_id, type, payload) "
          "VALUES ('stripe', %s, %s, %s) ON CONFLICT DO NOTHING")
pool = AsyncConnectionPool(URL, min_size=min(4, MAX), max_size=MAX, open=False)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute(CREATE)
    yield
    await pool.close()


async def webhook(request: Request) -> JSONResponse:
    body = (await request.body()).decode()
    try:
        stripe.WebhookSignature.verify_header(body, request.headers.get("stripe-signature"),
                                              SECRET, 300)
    except Exception:  # noqa: BLE001
        return JSONResponse({"error": "bad signature"}, status_code=400)
    event = json.loads(body)
    async with pool.connection() as conn:
        await conn.execute(INSERT, (event["id"], event["type"], body))
    return JSONResponse({"received": True})


app = Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
