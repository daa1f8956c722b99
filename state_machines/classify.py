"""Classification: which TRANSITION_TABLE trigger name an input is, in the current view.

Customer messages and activity may ask for a human; Meta's handover webhooks and
reconciliations are sorted by the kind of owner they name (or confirm what we already
believe); app actions are validated (malformed ones become `action:invalid`); requests are
turned into the owner's pass when request_policy is "grant"; timers of an old generation
are stale.
"""

from __future__ import annotations

from typing import Any

from state_machines.actions import (
    Accept,
    ActionError,
    BotFailure,
    Escalate,
    ExtendThread,
    MarkSeen,
    PassThread,
    PrivateReply,
    React,
    ReleaseThread,
    Reply,
    RequestThread,
    TakeThread,
    Unreact,
    validate_message,
)
from state_machines.control import controller
from state_machines.effects import Refusal
from state_machines.model import ConversationView, Policy
from state_machines.rules import MAX_EXTEND_S, META_BOT_FAILURE, RULE_VALID, B, H, P
from state_machines.run import Classified, Owner
from state_machines.triggers import (
    AppAction,
    AppRolesChanged,
    CustomerActivity,
    CustomerMessage,
    DisclosureUndelivered,
    Echo,
    MetaHandover,
    OwnerReconciled,
    TimerFired,
    Trigger,
)


def owner_of(app_id: Any, policy: Policy) -> Owner:
    if app_id is None or str(app_id) == "":
        return Owner("idle")
    app = policy.app_by_id(app_id)  # ids may come as numbers (docs/platform.md 2.8): normalised
    if app is not None:
        return Owner("bot" if app.is_bot else "human", app)
    return Owner("foreign", foreign_id=str(app_id))


def _target_named(name: str | None, policy: Policy) -> Owner | None:
    if name is None:
        return Owner("bot" if policy.primary.is_bot else "human", policy.primary)
    app = policy.find_app(name)
    if app is not None:
        return Owner("bot" if app.is_bot else "human", app)
    foreign = policy.foreign_id(name)
    return Owner("foreign", foreign_id=foreign) if foreign else None


def _confirms(view: ConversationView, owner: Owner, policy: Policy) -> bool:
    """Does Meta's owner only confirm what we already believe?"""
    if view.state is B:
        if owner.kind == "idle":
            return view.owner_app is None
        if owner.kind == "bot" and owner.app is not None:
            current = view.owner_app or policy.primary.name
            return owner.app.name == current
        return False
    if view.state is P:
        return owner.kind == "human" and owner.key == view.human_app
    return owner.key is not None and owner.key == view.owner_app


def standby_only(
    view: ConversationView, trig: CustomerMessage | CustomerActivity, policy: Policy
) -> bool:
    """Ownership evidence (docs/platform.md 2.9): a standby copy received by the app we believe in
    control proves that app does not own the thread (Meta sends each app one copy), so an
    app outside our belief owns it; so do standby copies to every app of ours. With several
    apps the controller's copy may be a duplicate intake did not store: `standby_by` lists
    the apps whose standby copies were seen. `received_by=None` means the edge vouches that
    no app of ours got the event in `messaging[]`. A standby copy received by another app
    alone proves nothing about the controller (it gets standby copies anyway)."""
    believed = controller(view, policy)
    if believed is None:
        return False
    every_app_standby = trig.source == "standby" and {a.name for a in policy.apps} <= {
        trig.received_by,
        *trig.standby_by,
    }
    if trig.source == "standby" and (trig.received_by is None or every_app_standby):
        return True  # no app of ours got it as owner
    if trig.control_pending:
        # Our own pass/take/release has not reached Meta yet: the app it names still gets
        # standby copies until it does, so its copy is expected, not evidence. (The reply it
        # may send is queued behind that call, so it goes out once the move is done.)
        return False
    if believed.name in trig.standby_by:
        return True  # its own copy was a standby one, whichever copy was stored
    return trig.source == "standby" and trig.received_by == believed.name


def owner_evidence(
    view: ConversationView, trig: CustomerMessage | CustomerActivity, policy: Policy
) -> bool:
    """The converse evidence (docs/platform.md 2.9): Meta sends an event in `messaging[]`
    only to the thread's owner (or, while the thread is idle, to the default app). An app of
    ours receiving it there while we believe an app outside our config (an Inbox) holds the
    thread means that app gave it up without a webhook we could see (a release sends none,
    docs/platform.md 2.8): our belief is stale."""
    if trig.source != "messaging" or view.foreign_owner_id is None:
        return False
    return policy.find_app(trig.received_by) is not None


def _stale_handover(
    view: ConversationView, trig: MetaHandover, owner: Owner, policy: Policy
) -> Classified | None:
    """A handover webhook that must not be applied (rules.CLOCK_RULES): older than the newest
    applied one (Meta's clock orders Meta's events), or stamped before a control move we
    decided later and disagreeing with it (two clocks: ask Meta instead of guessing)."""
    label = policy.owner_label(owner.key)
    if view.meta_handover_at is not None and trig.at < view.meta_handover_at:
        note = (
            f"{trig.kind} to {label} stamped {trig.at.isoformat()} is older than the newest "
            f"handover applied ({view.meta_handover_at.isoformat()}): recorded, not applied"
        )
        return Classified("meta:superseded", [note], target=owner, metadata=trig.metadata)
    if view.control_decided_at is not None and trig.at < view.control_decided_at:
        note = (
            f"{trig.kind} to {label} stamped {trig.at.isoformat()} (Meta's clock) predates our "
            f"control decision at {view.control_decided_at.isoformat()} (ours) and disagrees "
            "with it: not applied, Meta is asked who owns the thread"
        )
        return Classified("meta:unordered", [note], target=owner, metadata=trig.metadata)
    return None


def _invalid(message: str) -> Classified:
    return Classified("action:invalid", refusal=Refusal("invalid", message, RULE_VALID))


def classify(view: ConversationView, trigger: Trigger, policy: Policy) -> str:
    """The TRANSITION_TABLE trigger name `decide` uses for this input."""
    return classify_input(view, trigger, policy).name


def classify_input(view: ConversationView, trig: Trigger, policy: Policy) -> Classified:
    if isinstance(trig, CustomerMessage | CustomerActivity):
        if standby_only(view, trig, policy):
            return Classified("customer_standby")
        if owner_evidence(view, trig, policy):
            return Classified("customer_as_owner")
    if isinstance(trig, CustomerMessage):
        asks = policy.mentions_escalation(trig.text) or policy.is_escalation_payload(
            trig.quick_reply_payload
        )
        return _customer("customer_message", asks, policy)
    if isinstance(trig, CustomerActivity):
        asks = trig.kind == "postback" and policy.is_escalation_payload(trig.payload)
        return _customer("customer_activity", asks, policy)
    if isinstance(trig, Echo):
        app = policy.app_by_id(trig.app_id)
        return Classified("echo" if app is not None and app.is_bot else "echo_human")
    if isinstance(trig, AppAction):
        return _classify_action(view, trig, policy)
    if isinstance(trig, MetaHandover):
        if trig.kind == "request":
            requester = owner_of(trig.requested_owner_app_id, policy)
            return _request(view, "meta:request", requester, trig.metadata, policy)
        owner = owner_of(trig.new_owner_app_id, policy)
        if _confirms(view, owner, policy):
            return Classified("owner_confirmed", target=owner)
        stale = _stale_handover(view, trig, owner, policy)
        if stale is not None:
            return stale
        kind = {"idle": "bot", "bot": "bot", "human": "human", "foreign": "foreign"}[owner.kind]
        name = f"meta:pass_to_{kind}" if trig.kind == "pass" else f"meta:take_by_{kind}"
        return Classified(name, target=owner, metadata=trig.metadata)
    if isinstance(trig, OwnerReconciled):
        owner = owner_of(trig.owner_app_id, policy)
        if _confirms(view, owner, policy):
            return Classified("owner_confirmed", target=owner)
        return Classified(f"owner_reconciled:{owner.kind}", target=owner, metadata="reconciled")
    if isinstance(trig, AppRolesChanged):
        return Classified("meta:app_roles")
    if isinstance(trig, DisclosureUndelivered):
        return Classified("disclosure_undelivered")
    if isinstance(trig, TimerFired):
        if trig.generation != view.timer_generation:
            return Classified(
                "timer:stale",
                [
                    f"{trig.kind} timer of generation {trig.generation} is stale "
                    f"(current {view.timer_generation})"
                ],
            )
        if trig.kind == "human_idle" and view.state is H and view.human_app is None:
            # Never armed while a foreign inbox holds the thread: we cannot release for it.
            return Classified("timer:stale", ["human_idle does not apply to a foreign holder"])
        return Classified(f"timer:{trig.kind}")
    raise TypeError(f"not a trigger: {type(trig).__name__}")


def _customer(base: str, asks_for_human: bool, policy: Policy) -> Classified:
    if not asks_for_human:
        return Classified(base)
    target = policy.escalation_target
    if target is None:
        return Classified(base, ["the customer asked for a human, but no human app is configured"])
    return Classified(f"{base}_escalates", target=Owner("human", target))


def _classify_action(view: ConversationView, trig: AppAction, policy: Policy) -> Classified:
    actor = policy.find_app(trig.app)
    if actor is None:
        return _invalid(f"unknown app {trig.app!r}")
    action = trig.action
    out: Classified
    if isinstance(action, Reply):
        try:
            validate_message(action.message)
        except ActionError as exc:
            return _invalid(str(exc))
        out = Classified("action:reply")
    elif isinstance(action, Escalate):
        if action.target_app is None:
            default = policy.escalation_target
            owner = Owner("human", default) if default is not None else None
            out = Classified("action:escalate", target=owner)
        else:
            target = _target_named(action.target_app, policy)
            if target is None or target.kind in ("bot", "idle"):
                return _invalid(f"escalation target {action.target_app!r} is not a human app")
            name = "action:pass_to_inbox" if target.kind == "foreign" else "action:escalate"
            out = Classified(name, target=target)
        out.metadata = action.metadata
    elif isinstance(action, Accept):
        out = Classified("action:accept")
    elif isinstance(action, PassThread):
        target = _target_named(action.target_app, policy)
        if target is None:
            return _invalid(f"unknown pass target {action.target_app!r}")
        if target.app is not None and target.app.name == actor.name:
            return _invalid(f"{actor.name} cannot pass the thread to itself")
        suffix = {"bot": "", "human": "_to_human", "foreign": "_to_inbox", "idle": ""}
        out = Classified(f"action:pass{suffix[target.kind]}", target=target)
        out.metadata = action.metadata
    elif isinstance(action, TakeThread):
        name = "action:take" if actor.is_bot else "action:take_by_human"
        out = Classified(name, metadata=action.metadata)
    elif isinstance(action, ReleaseThread):
        out = Classified("action:release", metadata=action.metadata)
    elif isinstance(action, RequestThread):
        requester = Owner("bot" if actor.is_bot else "human", actor)
        out = _request(view, "action:request", requester, action.metadata, policy)
        if out.actor is None:
            out.actor = actor
        return out
    elif isinstance(action, ExtendThread):
        if not 1 <= action.duration_s <= MAX_EXTEND_S:
            return _invalid(f"extend duration {action.duration_s} s is outside 1 s … 7 days")
        out = Classified("action:extend")
    elif isinstance(action, React | Unreact):
        if not action.mid:
            return _invalid("a reaction needs the mid of the message reacted to")
        out = Classified("action:react")
    elif isinstance(action, PrivateReply):
        try:
            validate_message(action.message)
        except ActionError as exc:
            return _invalid(str(exc))
        if not action.comment_id:
            return _invalid("a private reply needs a comment_id")
        out = Classified("action:private_reply")
    elif isinstance(action, MarkSeen):
        out = Classified("action:mark_seen")
    elif isinstance(action, BotFailure):
        human = policy.escalation_target
        if view.bot_failures + 1 >= policy.bot_failure_threshold and human is not None:
            out = Classified("action:bot_failure_escalates", target=Owner("human", human))
            out.metadata = META_BOT_FAILURE
        else:
            out = Classified("action:bot_failure")
    else:  # pragma: no cover - the Action union is closed
        return _invalid(f"unsupported action {type(action).__name__}")
    out.actor = actor
    return out


def _request(
    view: ConversationView, name: str, requester: Owner, metadata: str | None, policy: Policy
) -> Classified:
    """A request for the thread. With request_policy "grant" the owner passes at once, so the
    request is handled exactly as the owner's pass to the requester (the action:pass* rows)."""
    owner = controller(view, policy)
    granted = (
        policy.request_policy == "grant"
        and owner is not None
        and requester.kind != "idle"
        and requester.key != owner.name
    )
    if not granted:
        return Classified(name, target=requester, metadata=metadata)
    suffix = {"bot": "", "human": "_to_human", "foreign": "_to_inbox", "idle": ""}[requester.kind]
    note = f"request by {policy.owner_label(requester.key)} granted (request_policy=grant)"
    return Classified(f"action:pass{suffix}", [note], owner, requester, metadata, granted=True)
