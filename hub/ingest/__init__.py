"""Provider events in: the event store (`events`), the one decision layer (`decide`: facts and
known state to what to book) and its loaders: one event at a time (`apply`), many in one
transaction (`batch`, `group_commit`, `replay`), and a scratch ledger (`whatif`)."""
