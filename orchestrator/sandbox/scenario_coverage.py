"""Which scenario step produces each trigger of the transition table, and which (state,
trigger) pairs the scenario files exercise.

A run records, for every event the product decided during a step, the state it was in and
the table trigger it was classified as (stored with the event's result). `matrix` prints
those pairs against the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable

from state_machines import TRIGGER_NAMES

STATES = ("bot", "pending_human", "human")

# trigger → the scenario step(s) that produce it. Kept here, beside the runner, so the
# state machine stays free of QA concerns; a test checks it names every trigger.
TRIGGER_STEPS: dict[str, str] = {
    "customer_message": "`say`, `burst`",
    "customer_message_escalates": "`say` with an escalation keyword or "
    "`quick_reply: TALK_TO_HUMAN`",
    "customer_activity": "`postback`, `react`, `unreact`, `read`, `edit`, `unsend`, `comment`, "
    "`open_link`",
    "customer_activity_escalates": "`postback` with an escalation payload (TALK_TO_HUMAN)",
    "echo": "Meta's echo of a bot's message (`act` reply by a bot app)",
    "echo_human": "`inbox: reply`; Meta's echo of a human app's message",
    "action:reply": "`act: {app, text}` (or `type: reply`)",
    "action:escalate": "`act: {app: bot, type: escalate}`",
    "action:accept": "`act: {app: support, type: accept}`",
    "action:pass": "`act: {type: pass}` to a bot app (or no target)",
    "action:pass_to_human": "`act: {type: pass, target_app: <human app>}`",
    "action:pass_to_inbox": "`act: {type: pass, target_app: instagram_inbox}`",
    "action:take": "`act: {type: take}` by a bot app",
    "action:take_by_human": "`act: {type: take}` by a human app with `can_take: true`",
    "action:release": "`act: {type: release}`",
    "action:request": "`act: {type: request}`",
    "action:extend": "`act: {type: extend, duration_s: …}`",
    "action:react": "`act: {type: react, mid: …, reaction: …}`",
    "action:private_reply": "`act: {type: private_reply, comment_id: last_comment, message: …}`",
    "action:mark_seen": "`act: {type: mark_seen}`",
    "action:bot_failure": "`say` something the bot does not understand "
    "(or `act: {app: bot, type: bot_failure}`)",
    "action:bot_failure_escalates": "the bot's failure number `bot_failure_threshold` in a row",
    "action:invalid": "`act` with an unknown target app or a meaningless target",
    "meta:pass_to_bot": "`inbox: {do: pass, target_app: bot}`",
    "meta:pass_to_human": "`inbox: {do: pass, target_app: support}`",
    "meta:pass_to_foreign": "a Meta pass webhook naming an Inbox (not produced by the simulator)",
    "meta:take_by_bot": "Meta's take webhook naming a bot app of ours",
    "meta:take_by_human": "Meta's take webhook naming a human app of ours",
    "meta:take_by_foreign": "`inbox: take` (or `inbox: reply`, which takes first)",
    "meta:request": "`inbox: request` while an app of ours holds the thread",
    "meta:app_roles": "an app_roles webhook (not produced by the simulator)",
    "customer_standby": "`say` while an app outside our config holds the thread (scenario 41)",
    "customer_as_owner": "`say` after the Instagram Inbox released the thread (`inbox: "
    "release`, no webhook): our app gets it as owner (scenarios 37, 45)",
    "meta:superseded": "a handover webhook older than the last applied (no step delays one)",
    "meta:unordered": "a handover webhook stamped before our own later control decision (no step)",
    "owner_confirmed": "Meta's handover webhook confirming our own move (`act` pass/take)",
    "owner_reconciled:idle": "Meta refuses for ownership and thread_owner says idle",
    "owner_reconciled:bot": "Meta refuses for ownership and thread_owner names a bot app",
    "owner_reconciled:human": "Meta refuses for ownership and thread_owner names a human app",
    "owner_reconciled:foreign": "Meta refuses for ownership and thread_owner names an Inbox "
    "(a silent Inbox take, then an `act`)",
    "disclosure_undelivered": "the outbox gives up on a disclosure: `faults: {graph_5xx_rate: "
    "1.0}` with `outbox_max_attempts: 1`, then `say` (scenario 44)",
    "timer:pending_timeout": "`advance` past `handover.pending_timeout` while pending",
    "timer:human_idle": "`advance` past `handover.human_idle_timeout` while a human holds it",
    "timer:control_expiry": "`advance` 24 h (or the extended time) without a customer message",
    "timer:stale": "a timer firing with an older generation than its conversation's (a race "
    "with another event; the sandbox deletes re-armed timers, so it does not occur there)",
}


def unmapped() -> list[str]:
    """Triggers of the table without a producing step here (a test keeps this empty)."""
    return [t for t in TRIGGER_NAMES if t not in TRIGGER_STEPS]


def trigger_table() -> str:
    lines = ["| Trigger | Produced by the scenario step |", "|---|---|"]
    lines += [f"| `{t}` | {TRIGGER_STEPS.get(t, '?')} |" for t in TRIGGER_NAMES]
    return "\n".join(lines)


def matrix(covered: Iterable[tuple[str, str]]) -> str:
    """Markdown: one row per trigger, ✓ where a scenario exercised (state, trigger)."""
    pairs = set(covered)
    total = len(TRIGGER_NAMES) * len(STATES)
    hit = sum((s, t) in pairs for t in TRIGGER_NAMES for s in STATES)
    lines = [
        f"{hit} of {total} (state, trigger) pairs are exercised by the shipped scenarios "
        "(✓ exercised, · not yet).",
        "",
        "| Trigger | " + " | ".join(STATES) + " |",
        "|---|" + "---|" * len(STATES),
    ]
    for t in TRIGGER_NAMES:
        cells = ["✓" if (s, t) in pairs else "·" for s in STATES]
        lines.append(f"| `{t}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
