"""The inbox's pure parts: UI languages, password hashing and tokens, the window line (worded
from the core's rules), the queue's sections and order, search patterns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.inbox import auth
from apps.inbox.i18n import LANGUAGES, TEXTS, pick_language, translate
from apps.inbox.present import build_queue, window_info
from apps.inbox.web import _like, _safe_next
from orchestrator.engine.policy import build_policy
from state_machines import ConversationView
from state_machines.model import State
from tests.conftest import make_config

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = build_policy(make_config())


def t(key: str, **values: object) -> str:
    return translate("en", key, **values)


def test_every_ui_text_exists_in_english_and_german() -> None:
    for key, entry in TEXTS.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry.values()), key
        # Placeholders match, so a German page never raises where an English one works.
        assert _fields(entry["en"]) == _fields(entry["de"]), key


def _fields(text: str) -> set[str]:
    import string

    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        ("de", "en-US", "de"),
        (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR, en;q=0.5", "en"),
        ("xx", None, "en"),
        (None, None, "en"),
    ],
)
def test_language_from_cookie_then_browser(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert pick_language(cookie, header) == expected


def test_passwords_are_argon2_hashes_that_verify() -> None:
    hashed = auth.hash_password("a long passphrase")
    assert hashed.startswith("$argon2id$") and "a long passphrase" not in hashed
    assert auth.check_password(hashed, "a long passphrase")
    assert not auth.check_password(hashed, "a long passphrasE")
    assert not auth.check_password("not a hash", "a long passphrase")
    with pytest.raises(ValueError, match="at least"):
        auth.hash_password("short")


def test_tokens_are_random_and_stored_as_hashes() -> None:
    a, b = auth.new_token(), auth.new_token()
    assert a != b and len(a) >= 40
    assert auth.token_hash(a) != a.encode() and len(auth.token_hash(a)) == 32
    assert auth.same_token(a, a) and not auth.same_token(a, b)
    assert not auth.same_token(None, None) and not auth.same_token("", "")


@pytest.mark.parametrize(
    ("ago", "kind", "can_send", "rule"),
    [
        (timedelta(hours=1), "automated", True, "normal reply"),
        (timedelta(hours=24), "automated", True, "normal reply"),  # inclusive edge
        (timedelta(hours=24, seconds=1), "human", True, "HUMAN_AGENT"),
        (timedelta(days=7), "human", True, "HUMAN_AGENT"),  # inclusive edge
        (timedelta(days=7, seconds=1), "closed", False, "7-day"),
    ],
)
def test_window_line_follows_the_core_rules(
    ago: timedelta, kind: str, can_send: bool, rule: str
) -> None:
    view = ConversationView(last_customer_message_at=NOW - ago)
    info = window_info(view, NOW, POLICY, t)
    assert (info.kind, info.can_send) == (kind, can_send)
    assert rule in info.rule
    if kind == "automated":
        assert (
            info.label
            == f"Automated replies until {(NOW - ago + timedelta(hours=24)):%Y-%m-%d %H:%M} UTC"
        )
    if kind == "human":
        assert info.label.startswith("Human replies only (HUMAN_AGENT) until ")


def test_window_line_when_the_customer_never_wrote() -> None:
    info = window_info(ConversationView(), NOW, POLICY, t)
    assert info.kind == "never" and not info.can_send


def _row(cid: int, state: str, *, agent: int | None = None, since: datetime | None = None,
         owner: str | None = None, unread: int = 0) -> dict[str, Any]:  # fmt: skip
    view = ConversationView(state=State(state), pending_since=since, owner_app=owner)
    return {
        "id": cid, "account_id": "1", "customer_id": f"c{cid}", "state": state,
        "owner_app": owner, "view": view.to_json(), "updated_at": NOW - timedelta(minutes=cid),
        "agent_id": agent, "agent_name": "X" if agent else None, "agent_login": None,
        "last_text": "hi", "last_direction": "in", "last_author": "customer",
        "last_deleted": None, "last_attachments": None, "unread": unread,
    }  # fmt: skip


def test_queue_pending_longest_waiting_first_then_mine_then_the_rest() -> None:
    rows = [
        _row(1, "bot"),
        _row(2, "pending_human", since=NOW - timedelta(minutes=1), owner="support"),
        _row(3, "human", agent=7, owner="support"),
        _row(4, "pending_human", since=NOW - timedelta(minutes=5), owner="support"),
        _row(5, "human", agent=8, owner="support"),
        _row(6, "human", owner="foreign:1217981644879628"),
    ]
    queue = build_queue(rows, 7, POLICY, t)
    assert [i.id for i in queue.pending] == [4, 2]
    assert queue.pending[0].pending_deadline == NOW - timedelta(minutes=5) + POLICY.pending_timeout
    assert [i.id for i in queue.mine] == [3]
    assert [i.id for i in queue.others] == [1, 5, 6]
    bot, other_agent, foreign = queue.others
    assert bot.bot_owned and not other_agent.bot_owned and not foreign.bot_owned
    assert foreign.owner_label == "instagram_inbox"


def test_search_text_is_a_literal_not_a_pattern() -> None:
    assert _like("  ") is None
    assert _like("100%_a\\b") == "%100\\%\\_a\\\\b%"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/inbox/c/4", "/inbox/c/4"),
        ("https://evil.example/", "/inbox/"),
        ("//evil.example/inbox/", "/inbox/"),
        ("/other", "/inbox/"),
        (None, "/inbox/"),
    ],
)
def test_after_sign_in_only_inbox_pages(given: str | None, expected: str) -> None:
    assert _safe_next(given) == expected
