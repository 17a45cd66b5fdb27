"""Every Dramatiq actor of the hub, declared in one place.

The jobs themselves are plain functions in the part of the house they belong to (payouts,
outgoing webhooks, mail); this table gives each its actor name, queue and retry policy. The
composition root (`hub.app.build_hub`) hands `build_queue` to the hub, so `hub serve`,
`hub worker` and `hub tick` all run the same actors.
"""

from __future__ import annotations

import dramatiq

from hub.jobs.queue import JobSpec, Queue
from hub.jobs.queue import build_queue as build_queue_of
from hub.notify import mail, webhooks
from hub.payouts import batches, sending
from hub.runtime import Hub

ACTORS: tuple[JobSpec, ...] = (
    JobSpec("payout.send", sending.send, "payouts", on_exhausted="payout.dead_letter"),
    JobSpec("payout.check", sending.check, "payouts"),
    JobSpec("payout.dead_letter", sending.dead_letter, "payouts", retries=False),
    JobSpec("payout.send_batch", batches.send_batch, "payouts",
            on_exhausted="payout.batch_dead_letter"),
    JobSpec("payout.check_batch", batches.check_batch, "payouts"),
    JobSpec("payout.batch_dead_letter", batches.batch_dead_letter, "payouts", retries=False),
    JobSpec("webhook.deliver", webhooks.deliver, "webhooks", on_exhausted="webhook.dead_letter"),
    JobSpec("webhook.dead_letter", webhooks.dead_letter, "webhooks", retries=False),
    JobSpec(mail.SEND_JOB, mail.send, "mail", on_exhausted="mail.dead_letter"),
    JobSpec("mail.dead_letter", mail.dead_letter, "mail", retries=False),
)


def build_queue(hub: Hub, broker: dramatiq.Broker | None = None) -> Queue:
    """The hub's broker with every actor above bound to it."""
    return build_queue_of(hub, ACTORS, broker)
