"""Signed fuzzing of the webhook endpoint of a running service (issue 10, items 1 and 5):
hypothesis-generated bodies plus the issue's cases. Every correctly signed POST must be
answered 200 (the database is up), every acknowledged byte must be in the store, the
service must stay healthy, and no log line may carry an error or customer content."""

from __future__ import annotations

import asyncio
import codecs
import http.client
import json
import os
from pathlib import Path
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.ingress.signature import sign
from orchestrator.store.intake import bounded
from tests.faults.postgres import FaultPostgres
from tests.faults.service import ACCOUNT_ID, BOT_SECRET, Service
from tests.faults.standin import StandIn

MARKER = "Fuzz-Kundeninhalt"  # in every generated text: must never reach a log line

ISSUE_CASES: list[bytes] = [
    b'{"object": "instagram", "entry": [1, "x", null]}',
    b'{"object": "instagram", "entry": [{"id": "1", "messaging": [1, 2, "three"]}]}',
    b'{"object": "instagram", "entry": [{"id": "1", "unknown": true}]}',
    b'{"object": "instagram", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"},'
    b' "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m\\u0000", "text": "a\\u0000b"}}]}]}',
    b'{"object": "instagram", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"},'
    b' "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m.s", "text": "\\ud800"}}]}]}',
    b'{"object": "instagram", "entry": [], "n": 1e400}',
    b'{"object": "instagram", "entry": [], "n": ' + b"7" * 5000 + b"}",
    b'{"object": "instagram", "entry": [{"id": "'
    + os.urandom(1500).hex().encode()
    + b'", "messaging": []}]}',
    b'{"object": "instagram", "entry": [',
    b"[" * 100_000,
    b"\xff\xfe\xfd",
    b"",
    codecs.BOM_UTF16_LE + '{"object": "instagram", "entry": []}'.encode("utf-16-le"),
    '{"object": "instagram", "entry": []}'.encode("utf-32"),
]


def _item(text: str, mid: str, sender: str) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": ACCOUNT_ID},
        "timestamp": 1_760_000_000_000,
        "message": {"mid": mid, "text": f"{MARKER} {text}"},
    }


ids = st.one_of(
    st.integers(1, 10**16).map(str),
    st.text(min_size=1, max_size=30),
    st.just(os.urandom(1600).hex()),
)
items = st.builds(_item, st.text(max_size=40), ids, ids)
webhooks = st.builds(
    lambda entries: {"object": "instagram", "entry": entries},
    st.lists(
        st.builds(
            lambda its: {"id": ACCOUNT_ID, "time": 1, "messaging": its},
            st.lists(items, min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=3,
    ),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


@st.composite
def bodies(draw: Any) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(ISSUE_CASES))
    if kind == 1:
        return draw(st.binary(max_size=300))
    value = draw(webhooks) if kind in (2, 3, 4) else draw(json_values)
    if kind == 3:
        text = json.dumps(value, ensure_ascii=False)
        return text.encode(
            draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32-le"])), "surrogatepass"
        )
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


def post(url: str, body: bytes, signature: str) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(
            "POST",
            "/webhooks/bot",
            body=body,
            headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.startswith(b"{") else raw
    finally:
        conn.close()


def fuzz(url: str, log: list[tuple[bytes, int, Any]], unsigned: list[int]) -> None:
    @settings(
        max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        bodies(),
        st.one_of(
            st.none(),
            st.text(st.characters(max_codepoint=255, blacklist_categories=("Cc",)), max_size=80),
        ),
    )
    def check(body: bytes, bad_signature: str | None) -> None:
        status, answer = post(url, body, sign(BOT_SECRET, body))
        log.append((body, status, answer))
        assert status == 200, (status, answer, body[:200])
        if bad_signature is not None:
            status, _ = post(url, body, bad_signature)
            unsigned.append(status)
            assert status in (400, 401), status

    check()


async def test_signed_fuzz_is_always_acknowledged_and_stored(
    standin: StandIn, tmp_path: Path, fault_pg: FaultPostgres
) -> None:
    database = await fault_pg.create_database()
    service = Service(database, standin.url, tmp_path)
    await service.start()
    log: list[tuple[bytes, int, Any]] = []
    unsigned: list[int] = []
    try:
        await asyncio.to_thread(fuzz, service.url, log, unsigned)
        assert service.alive()
        status, _ = await asyncio.to_thread(lambda: _get(service.url, "/readyz"))
        assert status == 200
        missing = await _missing(database, log)
        server_errors = sum(1 for _, s, _ in log if s >= 500) + sum(1 for s in unsigned if s >= 500)
        print(
            f"\nFAULTS signed webhook fuzz: in={len(log)} acknowledged="
            f"{sum(1 for _, s, _ in log if s == 200)} missing_from_store={len(missing)} "
            f"5xx={server_errors} unsigned_refused={len(unsigned)}",
            flush=True,
        )
        assert not missing, missing[:3]
        text = service.log.read_text("utf-8", "replace")
        assert MARKER not in text, "customer content in a log line"
        for event in service.events():
            assert event.get("level") not in ("error", "critical"), event
    finally:
        await service.stop()


def _get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def _missing(database: str, log: list[tuple[bytes, int, Any]]) -> list[bytes]:
    """Acknowledged POSTs of which nothing can be found: flagged ones by their exact bytes,
    clean ones by their mids (hashed when too long for the index)."""
    conn = await asyncpg.connect(database)
    try:
        raw = {
            bytes(r["body_bytes"])
            for r in await conn.fetch(
                "SELECT body_bytes FROM raw_deliveries WHERE body_bytes IS NOT NULL"
            )
        }
        mids = {r["mid"] for r in await conn.fetch("SELECT mid FROM events WHERE mid IS NOT NULL")}
    finally:
        await conn.close()
    missing = []
    for body, status, answer in log:
        if status != 200:
            continue
        flagged = answer["raw_only"] or answer["problems"] or answer["quarantined"]
        if flagged:
            if body not in raw:
                missing.append(body)
            continue
        payload = json.loads(body.decode(json.detect_encoding(body)).removeprefix("\ufeff"))
        wanted = {
            bounded(str(item["message"]["mid"]).strip())
            for entry in payload["entry"]
            for item in entry.get("messaging", [])
        }
        if not wanted <= mids:
            missing.append(body)
    return missing
