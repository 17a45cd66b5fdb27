"""What a connector plugin registers: its name and the HTTP routes providers call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Connector:
    """`process(hub, event) -> bool` stores and applies one exported provider event (the path
    `hub replay` uses); it returns False for an event the hub already had."""


    name: str
    routes: list[Any] = field(default_factory=list)
    process: Callable[[Any, dict[str, Any]], bool] | None = None
    description: str = ""
    # `payout_gateway(hub)` builds the `hub.payouts.PayoutGateway` that pays payouts whose
    # method is this connector's name (``paypal``); None for connectors that only bill.
    payout_gateway: Callable[[Any], Any] | None = None
    # `prepare(hub, event, session)` reads an exported event into a `hub.events.Incoming`
    # without storing it, so `hub replay` can apply many events in one transaction; connectors
    # without it are replayed one `process` call (one transaction) per event.
    prepare: Callable[..., Any] | None = None
