"""`hub worker`: background job workers (payouts, outgoing webhooks).

No background jobs are defined yet: the core books commissions inside the webhook's own
transaction, and payouts arrive with the payout work. The command says so instead of idling.
"""

from __future__ import annotations

from .runtime import Hub


def run(hub: Hub, processes: int = 1, threads: int = 4) -> int:
    print("hub worker: no background jobs are defined in this version; nothing to run.")
    return 0
