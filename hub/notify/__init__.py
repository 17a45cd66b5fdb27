"""What the hub tells the outside after a commit: the outbox (`outbox`, written in the
transaction of its cause by the ledger and the payouts) and the outgoing webhooks that deliver it
(`webhooks`)."""
