"""Intake that cannot be poisoned (issue 10, item 1): every correctly signed POST is answered
200 once stored, 503 only when the database is unavailable, never because of content; one bad
item never drops or blocks its batch-mates; every acknowledged byte is stored somewhere
queryable; header bytes never cause a 500; no customer content in log lines."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.app import create_app
from orchestrator.config import Config
from orchestrator.ingress.signature import sign
from orchestrator.store import intake
from orchestrator.store.outage import is_outage
from tests.conftest import ACCOUNT_ID, TEST_ENV

SECRET = TEST_ENV["BOT_APP_SECRET"]
MARKER = "Kundengeheimnis-4711"  # customer content that must never reach a log line


@pytest.fixture
async def client(config: Config, db_url: str) -> AsyncIterator[TestClient]:
    app = create_app(config, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def fetch(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def item(n: int, text: Any = None, mid: str | None = None, sender: Any = None) -> dict[str, Any]:
    return {
        "sender": {"id": sender if sender is not None else f"55500000000{n:04d}"},
        "recipient": {"id": ACCOUNT_ID},
        "timestamp": 1730000000000 + n,
        "message": {"mid": mid or f"mid.hardening.{n}", "text": text or f"good {n}"},
    }


def body_of(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [{"id": ACCOUNT_ID, "time": 1, "messaging": list(items)}],
    }


async def post(client: TestClient, raw: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    hdrs = {"X-Hub-Signature-256": sign(SECRET, raw), "Content-Type": "application/json"}
    hdrs.update(headers)
    resp = await client.post("/webhooks/bot", data=raw, headers=hdrs)
    return resp.status, await resp.json()


async def good_mids(db_url: str) -> set[str]:
    rows = await fetch(db_url, "SELECT mid FROM events WHERE mid LIKE 'mid.hardening.%'")
    return {r["mid"] for r in rows}


POISON_TEXTS = {
    "nul": "a\u0000b",
    "lone_surrogate": "a\ud800b",
    "lone_low_surrogate": "\udfff",
}


@pytest.mark.parametrize("case", sorted(POISON_TEXTS))
async def test_unstorable_string_is_stored_escaped_with_its_batch_mates(
    client: TestClient, db_url: str, case: str
) -> None:
    raw = json.dumps(body_of(item(1), item(2, POISON_TEXTS[case]), item(3))).encode()
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert answer["stored"] == 3
    assert await good_mids(db_url) == {"mid.hardening.1", "mid.hardening.2", "mid.hardening.3"}
    raw_rows = await fetch(db_url, "SELECT body_bytes, problem FROM raw_deliveries")
    assert [r["body_bytes"] for r in raw_rows] == [raw]  # the exact bytes, losslessly
    assert "escaped" in raw_rows[0]["problem"]


@pytest.mark.parametrize(
    "number", [b"1e400", b"-1e400", b"9" * 5000, b"-" + b"1" * 4301, b"1" * 4300]
)
async def test_numbers_postgresql_or_python_cannot_hold_are_kept(
    client: TestClient, db_url: str, number: bytes
) -> None:
    good = json.dumps(body_of(item(1))).encode()
    raw = good[:-1] + b', "extra": ' + number + b"}"
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert await good_mids(db_url) == {"mid.hardening.1"}
    if len(number) > 4300 or b"e" in number:
        rows = await fetch(db_url, "SELECT body_bytes FROM raw_deliveries")
        assert [r["body_bytes"] for r in rows] == [raw]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
async def test_utf16_and_utf32_bodies_are_stored(
    client: TestClient, db_url: str, encoding: str
) -> None:
    text = json.dumps(body_of(item(1, "Grüße aus Wien 👋")), ensure_ascii=False)
    raw = text.encode(encoding)
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert answer["stored"] == 1
    rows = await fetch(db_url, "SELECT payload->'message'->>'text' AS t FROM events")
    assert [r["t"] for r in rows] == ["Grüße aus Wien 👋"]


async def test_utf8_with_bom_is_stored(client: TestClient, db_url: str) -> None:
    raw = codecs.BOM_UTF8 + json.dumps(body_of(item(1))).encode()
    status, answer = await post(client, raw)
    assert status == 200 and answer["stored"] == 1


@pytest.mark.parametrize("field", ["mid", "sender"])
async def test_ids_over_the_index_limit_are_hashed_and_flagged(
    client: TestClient, db_url: str, field: str
) -> None:
    long = os.urandom(2000).hex()  # incompressible: btree rows are compressed first
    bad = item(2, mid=long) if field == "mid" else item(2, sender=long)
    raw = json.dumps(body_of(item(1), bad, item(3))).encode()
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert answer["stored"] == 3
    rows = await fetch(db_url, "SELECT mid, intake_problem FROM events ORDER BY id")
    assert len(rows) == 3 and rows[1]["intake_problem"] and "hashed" in rows[1]["intake_problem"]
    if field == "mid":
        assert rows[1]["mid"].startswith("sha256:")
    # Redelivery of the same bytes is recognised as a duplicate (hashing is stable).
    status, answer = await post(client, raw)
    assert status == 200 and answer["duplicates"] == 3
    assert len(await fetch(db_url, "SELECT body_bytes FROM raw_deliveries")) == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "instagram", "entry": [1, "x", None]},
        {"object": "instagram", "entry": [{"id": ACCOUNT_ID, "messaging": [1, 2, "three"]}]},
        {"object": "instagram", "entry": [{"id": ACCOUNT_ID, "surprise": {"k": "v"}}]},
        {"object": "instagram", "entry": []},
        [1, 2, 3],
        "just a string",
        None,
    ],
)
async def test_acknowledged_content_without_events_is_kept_raw(
    client: TestClient, db_url: str, payload: Any
) -> None:
    raw = json.dumps(payload).encode()
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert answer["problems"]
    rows = await fetch(db_url, "SELECT body_bytes FROM raw_deliveries")
    assert [r["body_bytes"] for r in rows] == [raw]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"object": "instagram", "entry": [',
        b"\xff\xfe\x00garbage\x00",
        b"[" * 100_000,
        b'{"entry": NaN}',
        b"",
        b"\x00\x00\x00",
        b'{"a": "caf\xe9"}',
    ],
)
async def test_signed_bytes_that_are_not_json_are_kept_raw_and_acknowledged(
    client: TestClient, db_url: str, raw: bytes
) -> None:
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert answer["raw_only"] is True
    rows = await fetch(db_url, "SELECT body, body_bytes FROM raw_deliveries")
    assert [r["body_bytes"] for r in rows] == [raw]


async def test_deep_but_decodable_nesting_is_stored(client: TestClient, db_url: str) -> None:
    deep: Any = "bottom"
    for _ in range(800):
        deep = {"d": deep}
    raw = json.dumps({**body_of(item(1)), "deep": deep}).encode()
    status, answer = await post(client, raw)
    assert status == 200, answer
    assert await good_mids(db_url) == {"mid.hardening.1"}


@pytest.mark.parametrize(
    "header",
    [
        "sha256=ä" + "0" * 63,
        "sha256=\u00ff\u00fe",
        "sha256=" + "0" * 64 + "\u0100",
        "\u200bsha256=" + "0" * 64,
        "x" * 8000,
    ],
)
async def test_non_ascii_signature_header_is_401_never_500(
    client: TestClient, db_url: str, header: str
) -> None:
    raw = json.dumps(body_of(item(1))).encode()
    resp = await client.post(
        "/webhooks/bot",
        data=raw,
        headers={"X-Hub-Signature-256": header.encode("utf-8").decode("latin-1")},
    )
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await good_mids(db_url) == set()


async def test_raw_latin1_header_bytes_are_401(client: TestClient) -> None:
    # Bytes on the wire that are not ASCII, sent without any client-side encoding.
    import asyncio

    raw = json.dumps(body_of(item(1))).encode()
    host, port = client.host, client.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /webhooks/bot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Hub-Signature-256: sha256=\xe4\xff\xfe\r\n"
        + f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n".encode()
        + raw
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 401 " in status_line or b" 400 " in status_line, status_line


async def test_no_customer_content_in_log_lines(
    client: TestClient, db_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    bodies = [
        json.dumps(body_of(item(1, MARKER), item(2, f"{MARKER}\u0000"))).encode(),
        json.dumps(
            {"object": "instagram", "entry": [{"id": MARKER, "messaging": [MARKER]}]}
        ).encode(),
        f'{{"broken": "{MARKER}'.encode(),
        json.dumps(body_of(item(3, sender=MARKER * 200))).encode(),
    ]
    for raw in bodies:
        status, _ = await post(client, raw)
        assert status == 200
    out, err = capfd.readouterr()
    assert "webhook_received" in out + err
    assert MARKER not in out + err


async def test_an_item_postgresql_refuses_is_quarantined_and_its_mates_stored(
    db_url: str,
) -> None:
    """The database's own isolation, below the Python sanitising: content that reaches the
    function unescaped (here a JSON `\\u0000` escape and an over-long mid) is kept in
    raw_deliveries, the other items are stored, and the call does not fail."""
    from datetime import UTC, datetime

    from orchestrator.store.queries import q

    at = datetime.now(UTC)
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            q("intake_items"),
            "bot",
            [ACCOUNT_ID] * 4,
            ["c1", "c2", "c3", "c4"],
            ["k1", "k2", "k3", "k4"],
            ["message"] * 4,
            ["messaging"] * 4,
            ["m1", "m2", os.urandom(2000).hex(), "m4"],
            [at] * 4,
            ['{"t": 1}', '{"t": "\\u0000"}', '{"t": 3}', '{"t": 4}'],
            [None] * 4,
            None,
            None,
            None,  # item numbers: one POST, numbered in order
        )
        stored = await conn.fetch("SELECT mid FROM events ORDER BY id")
        raw = await conn.fetch("SELECT item, problem, body_bytes FROM raw_deliveries ORDER BY item")
    finally:
        await conn.close()
    assert [(r["event_id"] is None, r["item"]) for r in rows if r["event_id"] is None] == [
        (True, 2),
        (True, 3),
    ]
    assert [r["mid"] for r in stored] == ["m1", "m4"]
    assert [r["item"] for r in raw] == [2, 3]
    assert raw[0]["body_bytes"] == b'{"t": "\\u0000"}'
    assert "SQLSTATE" in raw[0]["problem"]


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.InternalClientError("cannot switch to state 15"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
    ],
)
async def test_connection_level_errors_answer_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    assert is_outage(exc)

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise exc

    monkeypatch.setattr(intake, "_call", broken)
    monkeypatch.setattr(intake, "_call_group", broken)  # the path of clean POSTs under load
    monkeypatch.setattr(intake, "_store_raw_only", broken)
    status, answer = await post(client, json.dumps(body_of(item(1))).encode())
    assert status == 503 and answer["error"]["code"] == "store_unavailable"


async def test_an_error_that_is_not_an_outage_keeps_the_bytes_and_answers_200(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exc = asyncpg.exceptions.UndefinedFunctionError("a bug, not content and not an outage")
    assert not is_outage(exc)

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise exc

    monkeypatch.setattr(intake, "_call", broken)
    monkeypatch.setattr(intake, "_call_group", broken)
    raw = json.dumps(body_of(item(1))).encode()
    status, answer = await post(client, raw)
    assert status == 200 and answer["raw_only"] is True
    rows = await fetch(db_url, "SELECT body_bytes, problem FROM raw_deliveries")
    assert [r["body_bytes"] for r in rows] == [raw]
    assert "UndefinedFunctionError" in rows[0]["problem"]


async def test_mixed_batch_from_the_issue_is_acknowledged_whole(
    client: TestClient, db_url: str
) -> None:
    raw = json.dumps(
        {
            "object": "instagram",
            "entry": [
                {"id": ACCOUNT_ID, "messaging": [item(1), 1, "two", item(2, "x\u0000y")]},
                None,
                {
                    "id": ACCOUNT_ID,
                    "messaging": [item(3, mid=os.urandom(3000).hex()), item(4, "\ud83d")],
                },
            ],
        }
    ).encode()
    status, answer = await post(client, raw, **{"X-Extra": "1"})
    assert status == 200
    assert answer["stored"] == 4
    assert len(await good_mids(db_url)) == 3  # the fourth has a hashed mid
    rows = await fetch(db_url, "SELECT body_bytes FROM raw_deliveries")
    assert [r["body_bytes"] for r in rows] == [raw]


async def test_the_transcript_takes_a_huge_mid_hashed(db_url: str) -> None:
    """The worker writes the transcript with the message's mid: one too long for the unique
    index must not fail that event forever and stall its conversation (the engine-level
    check is the fault suite's webhook fuzz: no event fails)."""
    long_mid = os.urandom(2000).hex()
    conn = await asyncpg.connect(db_url)
    try:
        cid = await conn.fetchval(
            "INSERT INTO conversations (account_id, customer_id) VALUES ($1, 'c') RETURNING id",
            ACCOUNT_ID,
        )
        for _ in range(2):  # the second is the same message again: deduplicated
            await conn.execute(
                "INSERT INTO messages (conversation_id, mid, direction, author, created_at)"
                " VALUES ($1, $2, 'in', 'customer', now())"
                " ON CONFLICT (conversation_id, mid) WHERE mid IS NOT NULL DO NOTHING",
                cid,
                long_mid,
            )
        mids = [r["mid"] for r in await conn.fetch("SELECT mid FROM messages")]
    finally:
        await conn.close()
    assert mids == [intake.bounded(long_mid)]
