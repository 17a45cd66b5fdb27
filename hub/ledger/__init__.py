"""The append-only ledger and what it is read with: entries and balances (`entries`), holds and
releases, reversals of refunds and disputes (`reversals`), checkpoints, a customer's history as the
rules see it (`history`), subscription statuses, and why a line is what it is (`explain`)."""
