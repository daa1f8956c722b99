"""Handlers for what the outbox reports back about an effect it could not perform.

A disclosure the outbox gave up on never reached the customer (issue 9.4): deciding it was
not disclosing. The automated messages queued behind it were held in the same transaction
(migration 0009), so nothing automated reached a customer who was not told; here the
disclosure becomes due again, so the next automated message carries a fresh one.
"""

from __future__ import annotations

from state_machines.rules import RULE_DISCLOSURE
from state_machines.run import Run
from state_machines.triggers import DisclosureUndelivered


def disclosure_undelivered(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, DisclosureUndelivered)
    run.update(disclosure_due=True)
    held = f"{trig.held} automated message(s) behind it held, not sent"
    why = f" ({trig.reason})" if trig.reason else ""
    run.warn(
        f"the disclosure was not delivered{why}; {held} ({RULE_DISCLOSURE}); the next "
        "automated message carries a fresh disclosure"
    )
