"""Rules of the simulated Meta world (docs/platform.md 1.3, 2, 4, 5, 7), one behaviour per test."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestrator.sandbox.simulator.world import (
    DAY_S,
    INSTAGRAM_INBOX_APP_ID,
    GraphError,
    Outcome,
    SimApp,
    SimConfig,
    SimError,
    WebhookEvent,
    World,
)

T0 = 1_760_000_000.0
ACCOUNT = "17841400000000001"
PAGE = "100000000000001"
BOT, AGENT, CRM, SPARE = "1001", "2002", "3003", "4004"
CUSTOMER = "9100000000000001"


def make_world(**overrides: Any) -> World:
    apps = (
        SimApp("bot", BOT, "bot-secret", "bot-token", "http://127.0.0.1:9/bot", is_default=True),
        SimApp(
            "agent", AGENT, "agent-secret", "agent-token", "http://127.0.0.1:9/agent", can_take=True
        ),
        SimApp("crm", CRM, "crm-secret", "crm-token", "http://127.0.0.1:9/crm"),
        SimApp("spare", SPARE, "spare-secret", "spare-token", None, subscribed=False),
    )
    config = SimConfig(ACCOUNT, PAGE, overrides.pop("apps", apps), **overrides)
    return World(config, clock=lambda: T0)


@pytest.fixture
def world() -> World:
    return make_world()


def hooks_for(outcome: Outcome, app_id: str) -> list[WebhookEvent]:
    return [w for w in outcome.webhooks if w.app_id == app_id]


def only(outcome: Outcome, app_id: str) -> WebhookEvent:
    found = hooks_for(outcome, app_id)
    assert len(found) == 1, found
    return found[0]


def refused(call: Any, *args: Any, **kwargs: Any) -> GraphError:
    with pytest.raises(GraphError) as info:
        call(*args, **kwargs)
    return info.value


def text_to(igsid: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"recipient": {"id": igsid}, "message": {"text": text}, **extra}


def idle_after_release(world: World, igsid: str = CUSTOMER) -> None:
    """The customer writes (the default app takes control), then the default app releases: the
    thread is idle with the messaging window still open (docs/platform.md 1.3)."""
    world.say(igsid, "hi")
    assert world.thread(igsid).owner == BOT  # type: ignore[union-attr]
    world.release_thread_control(BOT, igsid)
    assert world.thread(igsid).owner is None  # type: ignore[union-attr]


def idle_after_silence(world: World, igsid: str = CUSTOMER) -> None:
    """The customer writes, then stays silent for more than 24 h: control expires, the thread
    is idle (docs/platform.md 1.3)."""
    world.say(igsid, "hi")
    world.advance(DAY_S + 1)
    assert world.thread(igsid).owner is None  # type: ignore[union-attr]


# ---------------------------------------------------------------- customers and webhooks


def test_mids_look_like_instagram_mids_and_are_unique(world: World) -> None:
    first = world.say(CUSTOMER, "hi").result["mid"]
    second = world.say(CUSTOMER, "again").result["mid"]
    assert first.startswith("aWdf") and second.startswith("aWdf")
    assert first != second
    decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode()
    assert decoded.startswith("ig_message:")


def test_idle_thread_customer_message_goes_to_default_app_and_standby_to_others(
    world: World,
) -> None:
    outcome = world.say(CUSTOMER, "hi")
    bot = only(outcome, BOT)
    assert bot.channel == "messaging"
    assert bot.payload["sender"] == {"id": CUSTOMER}
    assert bot.payload["recipient"] == {"id": ACCOUNT}
    assert bot.payload["message"] == {"mid": outcome.result["mid"], "text": "hi"}
    assert bot.payload["timestamp"] == int(T0 * 1000)
    assert only(outcome, AGENT).channel == "standby"
    assert only(outcome, CRM).channel == "standby"
    assert only(outcome, AGENT).payload["message"]["text"] == "hi"


@pytest.mark.parametrize(
    "make_idle", [None, idle_after_release, idle_after_silence], ids=["new", "released", "silent"]
)
def test_customer_message_to_idle_thread_gives_the_default_app_control(
    world: World, make_idle: Any
) -> None:
    if make_idle is not None:
        make_idle(world)
    outcome = world.say(CUSTOMER, "anyone there?")
    assert only(outcome, BOT).channel == "messaging"
    assert world.thread(CUSTOMER).owner == BOT  # type: ignore[union-attr]
    owner = world.thread_owner(BOT, CUSTOMER)["data"][0]["thread_owner"]
    assert owner == {"app_id": BOT, "expiration": int(world.now + DAY_S)}
    take = world.inbox_take(CUSTOMER, "moved_to_main")
    assert [(w.app_id, w.channel) for w in take.webhooks] == [(BOT, "messaging")]
    assert only(take, BOT).payload["take_thread_control"] == {
        "previous_owner_app_id": BOT,
        "new_owner_app_id": INSTAGRAM_INBOX_APP_ID,
        "metadata": "moved_to_main",
    }


def test_unsubscribed_app_gets_no_webhooks(world: World) -> None:
    assert hooks_for(world.say(CUSTOMER, "hi"), SPARE) == []


def test_owner_gets_messaging_and_default_app_gets_standby(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.say(CUSTOMER, "a human please")
    assert only(outcome, AGENT).channel == "messaging"
    assert only(outcome, BOT).channel == "standby"


def test_quick_reply_payload_and_reply_to_are_in_the_message(world: World) -> None:
    first = world.say(CUSTOMER, "hi").result["mid"]
    outcome = world.say(CUSTOMER, "Size M", "SIZE_M", reply_to=first)
    message = only(outcome, BOT).payload["message"]
    assert message["quick_reply"] == {"payload": "SIZE_M"}
    assert message["reply_to"] == {"mid": first}


def test_postback_standby_copy_carries_no_payload(world: World) -> None:
    outcome = world.postback(CUSTOMER, "CARE_HELP", "Talk to an agent")
    assert only(outcome, BOT).payload["postback"] == {
        "mid": outcome.result["mid"],
        "title": "Talk to an agent",
        "payload": "CARE_HELP",
    }
    standby = only(outcome, AGENT)
    assert standby.channel == "standby"
    assert "payload" not in standby.payload["postback"]


def test_reaction_and_unreaction_events(world: World) -> None:
    world.say(CUSTOMER, "hi")
    mid = world.send(BOT, text_to(CUSTOMER)).result["message_id"]
    reaction = only(world.react(CUSTOMER, mid, "love"), BOT).payload["reaction"]
    assert reaction == {"mid": mid, "action": "react", "reaction": "love", "emoji": "\u2764\ufe0f"}
    unreaction = only(world.unreact(CUSTOMER, mid), BOT).payload["reaction"]
    assert unreaction == {"mid": mid, "action": "unreact"}


def test_unsend_sends_is_deleted_and_erases_the_text(world: World) -> None:
    mid = world.say(CUSTOMER, "my card is 1234").result["mid"]
    outcome = world.unsend(CUSTOMER, mid)
    assert only(outcome, BOT).payload["message"] == {"mid": mid, "is_deleted": True}
    sent = world.customer_view(CUSTOMER)["sent"][0]
    assert sent["deleted"] is True and sent["text"] is None
    with pytest.raises(SimError):
        world.unsend(CUSTOMER, mid)


def test_customer_cannot_unsend_a_message_they_received(world: World) -> None:
    world.say(CUSTOMER, "hi")
    mid = world.send(BOT, text_to(CUSTOMER)).result["message_id"]
    with pytest.raises(SimError):
        world.unsend(CUSTOMER, mid)


def test_react_to_unknown_mid_is_a_control_error(world: World) -> None:
    world.say(CUSTOMER, "hi")
    with pytest.raises(SimError) as info:
        world.react(CUSTOMER, "aWdfnope", "love")
    assert info.value.status == 404


def test_comment_goes_in_changes_to_every_subscribed_app(world: World) -> None:
    outcome = world.comment(CUSTOMER, "price?", "17900000000000042")
    assert {w.app_id for w in outcome.webhooks} == {BOT, AGENT, CRM}
    change = only(outcome, AGENT)
    assert change.channel == "changes"
    assert change.payload["field"] == "comments"
    value = change.payload["value"]
    assert value["comment_id"] == outcome.result["comment_id"]
    assert value["text"] == "price?"
    assert value["from"]["id"] == CUSTOMER
    assert value["media"]["id"] == "17900000000000042"


def test_edit_sends_message_edit_with_count(world: World) -> None:
    mid = world.say(CUSTOMER, "helo").result["mid"]
    event = only(world.edit(CUSTOMER, mid, "hello"), BOT).payload["message_edit"]
    assert event == {"mid": mid, "text": "hello", "num_edit": 1}


def test_ig_me_link_on_existing_thread_sends_referral_and_on_new_thread_rides_first_message(
    world: World,
) -> None:
    pending = world.open_link(CUSTOMER, "spring")
    assert pending.webhooks == ()
    first = only(world.say(CUSTOMER, "hi"), BOT).payload["message"]
    assert first["referral"] == {"ref": "spring", "source": "SHORTLINKS", "type": "OPEN_THREAD"}
    again = only(world.open_link(CUSTOMER, "summer"), BOT).payload
    assert again["referral"]["ref"] == "summer"


def test_read_event_names_the_last_received_message(world: World) -> None:
    world.say(CUSTOMER, "hi")
    mid = world.send(BOT, text_to(CUSTOMER)).result["message_id"]
    assert only(world.read(CUSTOMER), BOT).payload["read"] == {"mid": mid}


# ---------------------------------------------------------------- Send API


def test_default_app_may_send_while_idle_and_gets_the_echo_alone(world: World) -> None:
    idle_after_release(world)
    outcome = world.send(BOT, text_to(CUSTOMER, "Hello!"))
    mid = outcome.result["message_id"]
    assert outcome.result == {"recipient_id": CUSTOMER, "message_id": mid}
    echo = only(outcome, BOT)
    assert echo.channel == "messaging"
    assert echo.payload["sender"] == {"id": ACCOUNT}
    assert echo.payload["recipient"] == {"id": CUSTOMER}
    assert echo.payload["message"] == {"mid": mid, "text": "Hello!", "is_echo": True, "app_id": BOT}
    assert [w.app_id for w in outcome.webhooks] == [BOT]
    received = world.customer_view(CUSTOMER)["received"]
    assert [(m["text"], m["app_id"]) for m in received] == [("Hello!", BOT)]


def test_non_default_app_cannot_send_while_idle(world: World) -> None:
    idle_after_release(world)
    error = refused(world.send, AGENT, text_to(CUSTOMER))
    assert (error.code, error.subcode) == (100, 2534037)
    assert "not the owner of the thread" in error.message


def test_only_the_owner_may_send(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    assert refused(world.send, BOT, text_to(CUSTOMER)).subcode == 2534037
    assert world.send(AGENT, text_to(CUSTOMER)).result["recipient_id"] == CUSTOMER


def test_messages_received_are_recorded_in_order_with_app_and_tag(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.send(BOT, text_to(CUSTOMER, "one"))
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    world.send(AGENT, text_to(CUSTOMER, "two", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"))
    received = world.customer_view(CUSTOMER)["received"]
    assert [(m["text"], m["app_id"], m["tag"]) for m in received] == [
        ("one", BOT, None),
        ("two", AGENT, "HUMAN_AGENT"),
    ]


def test_window_open_at_24_hours_and_closed_just_after(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.advance(DAY_S)
    world.send(BOT, text_to(CUSTOMER))
    world.advance(1)
    error = refused(world.send, BOT, text_to(CUSTOMER))
    assert (error.code, error.subcode) == (10, 2534022)
    assert "outside of allowed window" in error.message


def test_human_agent_tag_reaches_7_days_and_not_beyond(world: World) -> None:
    world.say(CUSTOMER, "hi")
    tagged = text_to(CUSTOMER, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    world.advance(DAY_S + 1)
    assert refused(world.send, BOT, text_to(CUSTOMER)).subcode == 2534022
    world.send(BOT, tagged)
    world.advance(6 * DAY_S - 1)  # exactly 7 days after the customer's message
    world.send(BOT, tagged)
    world.advance(1)
    error = refused(world.send, BOT, tagged)
    assert (error.code, error.subcode) == (10, 2534022)


def test_extended_owner_loses_control_with_the_7_day_window(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    world.extend_thread_control(AGENT, CUSTOMER, 7 * DAY_S)
    world.advance(7 * DAY_S)
    tagged = text_to(CUSTOMER, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    world.send(AGENT, tagged)
    world.advance(1)
    assert world.thread(CUSTOMER).owner is None  # type: ignore[union-attr]
    assert refused(world.send, AGENT, tagged).subcode == 2534037


@pytest.mark.parametrize(
    "tag", ["CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"]
)
def test_retired_tags_are_refused_with_code_100(world: World, tag: str) -> None:
    world.say(CUSTOMER, "hi")
    error = refused(world.send, BOT, text_to(CUSTOMER, messaging_type="MESSAGE_TAG", tag=tag))
    assert error.code == 100 and error.subcode is None
    assert world.customer_view(CUSTOMER)["received"] == []


def test_message_tag_without_tag_is_refused(world: World) -> None:
    world.say(CUSTOMER, "hi")
    assert refused(world.send, BOT, text_to(CUSTOMER, messaging_type="MESSAGE_TAG")).code == 100


def test_text_limit_is_1000_bytes_not_characters(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.send(BOT, text_to(CUSTOMER, "\u00e9" * 500))  # 1000 bytes
    error = refused(world.send, BOT, text_to(CUSTOMER, "\u00e9" * 501))  # 501 chars, 1002 bytes
    assert error.code == 100


def test_quick_reply_titles_are_cut_at_20_characters(world: World) -> None:
    world.say(CUSTOMER, "hi")
    qr = [{"content_type": "text", "title": "A very long quick reply title", "payload": "P"}]
    world.send(BOT, {"recipient": {"id": CUSTOMER}, "message": {"text": "?", "quick_replies": qr}})
    received = world.customer_view(CUSTOMER)["received"][0]
    assert received["quick_replies"] == [
        {"content_type": "text", "title": "A very long quick re", "payload": "P"}
    ]


def test_more_than_13_quick_replies_are_refused(world: World) -> None:
    world.say(CUSTOMER, "hi")
    qr = [{"content_type": "text", "title": str(i), "payload": str(i)} for i in range(14)]
    message = {"recipient": {"id": CUSTOMER}, "message": {"text": "?", "quick_replies": qr}}
    assert refused(world.send, BOT, message).code == 100


def test_unknown_recipient_is_no_matching_user(world: World) -> None:
    error = refused(world.send, BOT, text_to("123"))
    assert (error.code, error.subcode) == (100, 2018001)


def test_sender_actions_answer_recipient_id_and_send_no_webhook(world: World) -> None:
    mid = world.say(CUSTOMER, "hi").result["mid"]
    for action in ("mark_seen", "typing_on", "typing_off"):
        outcome = world.send(BOT, {"recipient": {"id": CUSTOMER}, "sender_action": action})
        assert outcome == Outcome({"recipient_id": CUSTOMER})
    react = {
        "recipient": {"id": CUSTOMER},
        "sender_action": "react",
        "payload": {"message_id": mid, "reaction": "love"},
    }
    assert world.send(BOT, react) == Outcome({"recipient_id": CUSTOMER})
    assert world.customer_view(CUSTOMER)["sent"][0]["business_reaction"] == "love"


def test_sender_action_by_non_owner_is_refused(world: World) -> None:
    world.say(CUSTOMER, "hi")
    error = refused(world.send, CRM, {"recipient": {"id": CUSTOMER}, "sender_action": "typing_on"})
    assert error.subcode == 2534037


def test_private_reply_once_per_comment(world: World) -> None:
    comment_id = world.comment(CUSTOMER, "price?").result["comment_id"]
    reply = {"recipient": {"comment_id": comment_id}, "message": {"text": "Sent you a DM"}}
    outcome = world.send(AGENT, reply)  # no ownership needed for a private reply
    assert outcome.result["recipient_id"] == CUSTOMER
    assert only(outcome, AGENT).payload["message"]["is_echo"] is True
    error = refused(world.send, BOT, reply)
    assert error.subcode == 2534025
    view = world.customer_view(CUSTOMER)
    assert view["received"][0]["via"] == "private_reply"
    assert view["comments"][0]["private_reply_mid"] == outcome.result["message_id"]


def test_private_reply_within_7_days_of_the_comment(world: World) -> None:
    late = world.comment(CUSTOMER, "old comment").result["comment_id"]
    world.advance(7 * DAY_S)
    on_time = world.comment(CUSTOMER, "new comment").result["comment_id"]
    world.advance(1)
    error = refused(world.send, BOT, {"recipient": {"comment_id": late}, "message": {"text": "x"}})
    assert (error.code, error.subcode) == (10, 2534022)
    world.send(BOT, {"recipient": {"comment_id": on_time}, "message": {"text": "x"}})


def test_rate_limit_613_per_app_per_second() -> None:
    world = make_world(rate_limit_per_s=3)
    for _ in range(3):
        world.check_rate(BOT)
    error = refused(world.check_rate, BOT)
    assert error.code == 613 and error.http_status == 400
    assert "exceeded the rate limit" in error.message
    world.check_rate(AGENT)  # another app has its own budget
    world.advance(1.0)
    world.check_rate(BOT)


def test_inline_pass_sends_then_passes(world: World) -> None:
    world.say(CUSTOMER, "hi")
    outcome = world.send(
        BOT,
        text_to(
            CUSTOMER, "Connecting you", thread_control={"control_type": "pass", "app_id": AGENT}
        ),
    )
    assert only(outcome, BOT).payload["message"]["is_echo"] is True
    handover = only(outcome, AGENT).payload["pass_thread_control"]
    assert handover == {"previous_owner_app_id": BOT, "new_owner_app_id": AGENT}
    assert world.customer_view(CUSTOMER)["owner_app_id"] == AGENT


# ---------------------------------------------------------------- thread control


def test_pass_by_owner_moves_control_and_notifies_only_the_new_owner(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.pass_thread_control(AGENT, CUSTOMER, CRM, "escalate:billing")
    assert outcome.result == {"success": True}
    assert [w.app_id for w in outcome.webhooks] == [CRM]
    assert only(outcome, CRM).payload["pass_thread_control"] == {
        "previous_owner_app_id": AGENT,
        "new_owner_app_id": CRM,
        "metadata": "escalate:billing",
    }
    assert world.thread(CUSTOMER).owner == CRM  # type: ignore[union-attr]


def test_pass_without_target_goes_to_the_default_app(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.pass_thread_control(AGENT, CUSTOMER)
    assert only(outcome, BOT).payload["pass_thread_control"]["new_owner_app_id"] == BOT


def test_anyone_may_pass_an_idle_thread(world: World) -> None:
    idle_after_release(world)
    outcome = world.pass_thread_control(CRM, CUSTOMER, AGENT)
    assert only(outcome, AGENT).payload["pass_thread_control"]["previous_owner_app_id"] is None


def test_non_owner_cannot_pass_release_or_extend(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    for call in (
        lambda: world.pass_thread_control(BOT, CUSTOMER, CRM),
        lambda: world.release_thread_control(CRM, CUSTOMER),
        lambda: world.extend_thread_control(BOT, CUSTOMER, 3600),
    ):
        assert refused(call).subcode == 2534037
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]


def test_thread_control_on_unknown_customer_is_no_matching_user(world: World) -> None:
    assert refused(world.pass_thread_control, BOT, "404", AGENT).subcode == 2018001


def test_take_notifies_the_previous_owner(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, CRM)
    outcome = world.take_thread_control(AGENT, CUSTOMER, "agent_took_over")
    assert only(outcome, CRM).payload["take_thread_control"] == {
        "previous_owner_app_id": CRM,
        "new_owner_app_id": AGENT,
        "metadata": "agent_took_over",
    }
    assert [w.app_id for w in outcome.webhooks] == [CRM]


@pytest.mark.parametrize(
    "make_idle", [idle_after_release, idle_after_silence], ids=["released", "silent"]
)
def test_take_from_idle_sends_no_webhook(world: World, make_idle: Any) -> None:
    make_idle(world)
    outcome = world.take_thread_control(AGENT, CUSTOMER)
    assert outcome.webhooks == ()
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]


def test_take_needs_the_take_right(world: World) -> None:
    world.say(CUSTOMER, "hi")
    error = refused(world.take_thread_control, CRM, CUSTOMER)
    assert error.code == 10
    assert world.thread(CUSTOMER).owner == BOT  # type: ignore[union-attr]


def test_take_is_refused_when_routing_is_off() -> None:
    world = make_world(routing_enabled=False)
    world.say(CUSTOMER, "hi")
    error = refused(world.take_thread_control, AGENT, CUSTOMER)
    assert error.subcode == 2534123
    assert "Conversation Routing is not enabled" in error.message


def test_release_makes_the_thread_idle_without_webhook(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.release_thread_control(AGENT, CUSTOMER)
    assert outcome == Outcome({"success": True})
    assert world.thread_owner(AGENT, CUSTOMER) == {"data": []}
    assert refused(world.release_thread_control, AGENT, CUSTOMER).subcode == 2534037


def test_request_on_idle_thread_grants_control_with_a_pass_webhook(world: World) -> None:
    idle_after_release(world)
    outcome = world.request_thread_control(AGENT, CUSTOMER, "user_asked")
    assert only(outcome, AGENT).payload["pass_thread_control"] == {
        "previous_owner_app_id": None,
        "new_owner_app_id": AGENT,
        "metadata": "user_asked",
    }
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]


def test_request_on_owned_thread_asks_the_owner(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.request_thread_control(BOT, CUSTOMER, "user_asked_for_bot")
    assert only(outcome, AGENT).payload["request_thread_control"] == {
        "requested_owner_app_id": BOT,
        "metadata": "user_asked_for_bot",
    }
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]
    assert refused(world.request_thread_control, AGENT, CUSTOMER).code == 100


def test_extend_keeps_control_past_24_hours_up_to_7_days(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    assert refused(world.extend_thread_control, AGENT, CUSTOMER, 7 * DAY_S + 1).code == 100
    world.extend_thread_control(AGENT, CUSTOMER, 3 * DAY_S)
    world.advance(3 * DAY_S)
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]
    world.advance(1)
    assert world.thread(CUSTOMER).owner is None  # type: ignore[union-attr]


def test_control_idles_after_24_hours_without_a_customer_message(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    world.advance(DAY_S - 1)
    world.say(CUSTOMER, "still there?")  # keeps control alive for another day
    world.advance(DAY_S)
    assert world.thread(CUSTOMER).owner == AGENT  # type: ignore[union-attr]
    world.advance(1)
    assert world.thread(CUSTOMER).owner is None  # type: ignore[union-attr]
    assert only(world.say(CUSTOMER, "hello?"), BOT).channel == "messaging"
    assert world.thread(CUSTOMER).owner == BOT  # type: ignore[union-attr]


def test_thread_owner_shows_app_id_to_owner_and_default_app_only(world: World) -> None:
    idle_after_release(world)
    assert world.thread_owner(BOT, CUSTOMER) == {"data": []}
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    expiration = int(T0 + DAY_S)
    full = {"data": [{"thread_owner": {"app_id": AGENT, "expiration": expiration}}]}
    assert world.thread_owner(AGENT, CUSTOMER) == full
    assert world.thread_owner(BOT, CUSTOMER) == full
    assert world.thread_owner(CRM, CUSTOMER) == {
        "data": [{"thread_owner": {"expiration": expiration}}]
    }


def test_routing_off_every_app_gets_messaging_and_may_send_while_idle() -> None:
    world = make_world(routing_enabled=False)
    outcome = world.say(CUSTOMER, "hi")
    assert {(w.app_id, w.channel) for w in outcome.webhooks} == {
        (BOT, "messaging"),
        (AGENT, "messaging"),
        (CRM, "messaging"),
    }
    assert world.thread(CUSTOMER).owner is None  # type: ignore[union-attr]
    world.send(CRM, text_to(CUSTOMER))
    assert world.feature_status()["messaging_feature_status"]["ig_multi_app"] is False


# ---------------------------------------------------------------- the Instagram Inbox


def test_inbox_take_notifies_the_previous_owner(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    outcome = world.inbox_take(CUSTOMER, "moved_to_main")
    assert only(outcome, AGENT).payload["take_thread_control"] == {
        "previous_owner_app_id": AGENT,
        "new_owner_app_id": INSTAGRAM_INBOX_APP_ID,
        "metadata": "moved_to_main",
    }
    after = world.say(CUSTOMER, "hi inbox")
    assert {w.channel for w in after.webhooks} == {"standby"}


def test_inbox_reply_reaches_customer_and_our_apps_see_a_standby_echo(world: World) -> None:
    world.say(CUSTOMER, "hi")
    outcome = world.inbox_reply(CUSTOMER, "Ana here")
    take = [w for w in outcome.webhooks if w.channel == "messaging"]
    assert [w.app_id for w in take] == [BOT]  # the default app owned the thread
    assert take[0].payload["take_thread_control"]["previous_owner_app_id"] == BOT
    echoes = [w for w in outcome.webhooks if w.channel == "standby"]
    assert {w.app_id for w in echoes} == {BOT, AGENT, CRM}
    message = echoes[0].payload["message"]
    assert message["is_echo"] is True and message["app_id"] == INSTAGRAM_INBOX_APP_ID
    assert world.thread(CUSTOMER).owner == INSTAGRAM_INBOX_APP_ID  # type: ignore[union-attr]
    received = world.customer_view(CUSTOMER)["received"]
    assert [(m["text"], m["app_id"]) for m in received] == [("Ana here", INSTAGRAM_INBOX_APP_ID)]


def test_inbox_pass_hands_back_to_the_target(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.inbox_take(CUSTOMER)
    outcome = world.inbox_pass(CUSTOMER, BOT, "done")
    assert only(outcome, BOT).payload["pass_thread_control"] == {
        "previous_owner_app_id": INSTAGRAM_INBOX_APP_ID,
        "new_owner_app_id": BOT,
        "metadata": "done",
    }


def test_inbox_acts_only_on_known_customers_and_replies_within_7_days(world: World) -> None:
    with pytest.raises(SimError) as info:
        world.inbox_take("404")
    assert info.value.status == 404
    world.say(CUSTOMER, "hi")
    world.advance(7 * DAY_S + 1)
    with pytest.raises(SimError):
        world.inbox_reply(CUSTOMER, "sorry for the wait")


def test_inbox_cannot_pass_a_thread_it_does_not_own(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.pass_thread_control(BOT, CUSTOMER, AGENT)
    with pytest.raises(SimError):
        world.inbox_pass(CUSTOMER, BOT)


# ---------------------------------------------------------------- reads, subscriptions, config


def test_conversations_need_platform_instagram_and_filter_by_user(world: World) -> None:
    world.say(CUSTOMER, "hi")
    world.say("9100000000000002", "hey")
    assert world.conversations(BOT, None, None) == {"data": []}
    rows = world.conversations(BOT, "instagram", None)["data"]
    assert len(rows) == 2 and all(set(r) == {"id", "updated_time"} for r in rows)
    one = world.conversations(BOT, "instagram", CUSTOMER, ["is_owner", "messages"])["data"]
    assert len(one) == 1 and one[0]["is_owner"] is True
    assert len(one[0]["messages"]["data"]) == 1


def test_subscribed_fields_filter_webhooks_and_accept_both_handover_spellings(
    world: World,
) -> None:
    world.subscribe(AGENT, "messages,messaging_handovers")
    assert world.subscribed_apps()["data"][1] == {
        "id": AGENT,
        "name": "agent",
        "subscribed_fields": ["messages", "messaging_handover"],
    }
    standby = world.say(CUSTOMER, "hi")  # no `standby` field: no copy
    assert hooks_for(standby, AGENT) == []
    assert hooks_for(world.pass_thread_control(BOT, CUSTOMER, AGENT), AGENT) != []
    with pytest.raises(GraphError):
        world.subscribe(AGENT, "messages,bogus")
    world.unsubscribe(AGENT)
    assert hooks_for(world.say(CUSTOMER, "again"), AGENT) == []


def test_feature_status_reports_routing(world: World) -> None:
    assert world.feature_status() == {
        "messaging_feature_status": {"hop_v2": False, "msgr_multi_app": True, "ig_multi_app": True},
        "id": PAGE,
    }


def test_default_app_is_the_instagram_inbox_when_none_of_ours_is() -> None:
    world = make_world(apps=(SimApp("agent", AGENT, "s", "t", None, can_take=True),))
    outcome = world.say(CUSTOMER, "hi")
    assert only(outcome, AGENT).channel == "standby"
    assert world.default_app_id == INSTAGRAM_INBOX_APP_ID
    assert world.thread(CUSTOMER).owner == INSTAGRAM_INBOX_APP_ID  # type: ignore[union-attr]
    assert world.take_thread_control(AGENT, CUSTOMER).webhooks == ()  # the Inbox gets none


def test_config_refuses_two_default_apps_and_duplicate_tokens() -> None:
    with pytest.raises(ValueError):
        make_world(
            apps=(SimApp("a", "1", "s", "t1", None, True), SimApp("b", "2", "s", "t2", None, True))
        )
    with pytest.raises(ValueError):
        make_world(apps=(SimApp("a", "1", "s", "t", None), SimApp("b", "2", "s", "t", None)))


def test_tokens_identify_apps(world: World) -> None:
    assert world.app_by_token("agent-token").app_id == AGENT  # type: ignore[union-attr]
    assert world.app_by_token("nope") is None
    assert world.app_by_app_token(f"{BOT}|bot-secret").app_id == BOT  # type: ignore[union-attr]
    assert world.app_by_app_token(f"{BOT}|wrong") is None


def test_reset_forgets_threads_but_never_reuses_mids(world: World) -> None:
    first = world.say(CUSTOMER, "hi").result["mid"]
    world.advance(DAY_S)
    world.reset()
    assert world.thread(CUSTOMER) is None
    assert world.now == T0
    assert world.say(CUSTOMER, "hi").result["mid"] != first


def test_reset_keeps_app_registrations_unless_asked(world: World) -> None:
    world.set_webhook_url(BOT, "http://127.0.0.1:9/new")
    world.unsubscribe(AGENT)
    world.reset()
    assert world.app_states[BOT].webhook_url == "http://127.0.0.1:9/new"
    assert world.app_states[AGENT].subscribed is False
    world.reset(apps=True)
    assert world.app_states[BOT].webhook_url == "http://127.0.0.1:9/bot"
    assert world.app_states[AGENT].subscribed is True


def test_clock_only_moves_forward(world: World) -> None:
    with pytest.raises(SimError):
        world.advance(-1)


def test_every_copy_of_one_customer_event_carries_the_same_timestamp() -> None:
    ticks = iter(range(1_800_000_000_000, 1_900_000_000_000, 7))  # a clock that moves per read
    world = make_world()
    world._clock = lambda: next(ticks) / 1000  # type: ignore[method-assign]
    outcome = world.say(CUSTOMER, "hi")
    stamps = {hook.payload["timestamp"] for hook in outcome.webhooks}
    assert len(outcome.webhooks) == 3 and len(stamps) == 1  # bot, agent and crm
