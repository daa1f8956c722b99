"""The Instagram Inbox releasing a thread and requesting it (the `inbox: release|request`
scenario steps): Meta's rules as the simulator plays them."""

from __future__ import annotations

import pytest

from orchestrator.sandbox.simulator.world import INSTAGRAM_INBOX_APP_ID, SimError
from tests.unit.test_simulator_world import BOT, CUSTOMER, make_world


def test_the_inbox_releases_silently_and_the_default_app_answers_next() -> None:
    world = make_world()
    world.say(CUSTOMER, "Hallo")
    world.inbox_take(CUSTOMER)
    released = world.inbox_release(CUSTOMER)
    assert released.webhooks == ()  # a release sends no webhook
    thread = world.thread(CUSTOMER)
    assert thread is not None and thread.owner is None
    message = world.say(CUSTOMER, "Hallo?")
    assert [(w.app_id, w.channel) for w in message.webhooks if w.app_id == BOT] == [
        (BOT, "messaging")
    ]
    assert thread.owner == BOT


def test_the_inbox_cannot_release_what_it_does_not_hold() -> None:
    world = make_world()
    world.say(CUSTOMER, "Hallo")
    with pytest.raises(SimError) as info:
        world.inbox_release(CUSTOMER)
    assert info.value.status == 409 and "does not own" in str(info.value)


def test_the_inbox_request_asks_the_app_holding_the_thread() -> None:
    world = make_world()
    world.say(CUSTOMER, "Hallo")  # the bot (default app) holds the thread
    outcome = world.inbox_request(CUSTOMER, "bitte zurück")
    [hook] = outcome.webhooks
    assert hook.app_id == BOT
    assert hook.payload["request_thread_control"] == {
        "requested_owner_app_id": INSTAGRAM_INBOX_APP_ID,
        "metadata": "bitte zurück",
    }
    thread = world.thread(CUSTOMER)
    assert thread is not None and thread.owner == BOT  # a request moves nothing by itself


def test_the_inbox_request_on_a_thread_it_holds_is_refused() -> None:
    world = make_world()
    world.say(CUSTOMER, "Hallo")
    world.inbox_take(CUSTOMER)
    with pytest.raises(SimError) as info:
        world.inbox_request(CUSTOMER)
    assert info.value.status == 409


def test_an_unknown_message_reference_is_a_clear_404() -> None:
    world = make_world()
    world.say(CUSTOMER, "Hallo")
    with pytest.raises(SimError) as info:
        world.unsend(CUSTOMER, "no-such-mid")
    assert info.value.status == 404
    assert str(info.value) == f"no message 'no-such-mid' in the thread of {CUSTOMER}"
