"""The OpenAPI document of /api/v1 against the implementation: the same routes, and a
property-based fuzz of every operation from the document that fails on any 5xx (issue 10.2).

The service (with the Meta simulator standing in for Graph) runs in a thread with its own
event loop; hypothesis drives it over real HTTP on loopback with a plain blocking client, so
any bytes the document's parameters and bodies allow — and many it does not — reach it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.api.openapi import document
from orchestrator.app import create_app
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import make_config

CUSTOMER = "5550000000000099"
KEYS = ["support-api-key"]


def test_document_and_routes_agree(db_url: str) -> None:
    app = create_app(make_config(), database_url=db_url, background=False)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1")
        and route.method != "HEAD"
    }
    doc = document()
    described = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("operationId") and op.get("responses"), (method, path)
            params = {p["name"] for p in _params(doc, op) if p["in"] == "path"}
            assert params == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _params(doc: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(doc, p) for p in op.get("parameters", [])]


# -- strategies from the document --------------------------------------------------------

# Header values as HTTP allows them (visible ASCII and obs-text bytes 0x80-0xff); control
# characters are refused by aiohttp's HTTP parser with a plain-text 400 before any handler.
LATIN1 = st.characters(max_codepoint=255, blacklist_categories=("Cc",), blacklist_characters="\x7f")
ANY_TEXT = st.text(max_size=40)
# Stand-ins expanded just before sending (hypothesis warns about reprs of 70 kB values).
HUGE = b"<70 kB body>"
HUGE_TEXT = "<70 kB text>"
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def from_schema(doc: dict[str, Any], schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    schema = _resolve(doc, schema or {})
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | ANY_TEXT
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
        return st.integers(low, high) | st.integers() | st.just(low - 1) | st.just(high + 1)
    if kind == "string":
        return st.text(max_size=schema.get("maxLength", 60) + 5) | st.just(HUGE_TEXT)
    if kind == "object" and depth < 3:
        props = {
            name: from_schema(doc, sub, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
        return st.fixed_dictionaries({}, optional=props) | st.dictionaries(
            ANY_TEXT, JSON, max_size=3
        )
    return JSON


def path_value(schema: dict[str, Any], known: list[str]) -> st.SearchStrategy[str]:
    valid = st.sampled_from(known) | st.integers(1, 2**63 - 1).map(str)
    weird = st.sampled_from(
        ["0", "-1", "9223372036854775808", "9" * 30, "²", "\uff15", "1.0", "0x1", " 1", "%00"]
    )
    return valid | weird | st.text(min_size=1, max_size=20)


def request_for(
    doc: dict[str, Any], path: str, method: str, op: dict[str, Any], known: list[str]
) -> st.SearchStrategy[tuple[str, dict[str, str], bytes]]:
    params = _params(doc, op)

    @st.composite
    def build(draw: Any) -> tuple[str, dict[str, str], bytes]:
        url = path
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        for p in params:
            schema = p.get("schema", {})
            if p["in"] == "path":
                value = draw(path_value(schema, known))
                url = url.replace("{" + p["name"] + "}", quote(value, safe=""))
            elif p["in"] == "query" and draw(st.booleans()):
                value = draw(from_schema(doc, schema))
                query.append((p["name"], value if isinstance(value, str) else json.dumps(value)))
            elif p["in"] == "header" and draw(st.booleans()):
                headers[p["name"]] = draw(st.text(LATIN1, max_size=260))
        if draw(st.integers(0, 9)) == 0:
            query.append((draw(st.text(max_size=8)), draw(st.text(max_size=8))))
        if query:
            url += "?" + urlencode(query)
        auth = draw(st.sampled_from([*KEYS, *KEYS, "", "wrong"]) | st.text(LATIN1, max_size=30))
        if auth or draw(st.booleans()):
            headers["Authorization"] = f"Bearer {auth}"
        body = b""
        if method == "post":
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            choice = draw(st.integers(0, 3))
            if choice == 0:
                body = json.dumps(draw(from_schema(doc, content.get("schema")))).encode()
            elif choice == 1:
                body = json.dumps(draw(JSON)).encode()
            elif choice == 2:
                body = draw(st.binary(max_size=200))
            else:
                body = draw(st.sampled_from([b"[" * 5000, b'{"text": "a\\u0000"}', b"{}", HUGE]))
        return url, headers, body

    return build()


@pytest.fixture
def service(db_url: str) -> Iterator[tuple[str, int, list[str]]]:
    """Sandbox (orchestrator + simulator) in a thread with its own loop; one conversation."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    sb = Sandbox(make_config(), db_url)
    run(sb.__aenter__())
    try:
        run(sb.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": "Hallo"}))
        run(sb.settle())
        row = run(sb.conversation(CUSTOMER))
        host, port = sb.url.removeprefix("http://").split(":")
        yield host, int(port), [str(row["id"])]
    finally:
        run(sb.__aexit__(None, None, None))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def send(
    host: str, port: int, method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes, str]:
    if body == HUGE:
        body = b'{"text": "' + b"x" * 70_000 + b'"}'
    body = body.replace(json.dumps(HUGE_TEXT).encode(), json.dumps("y" * 70_000).encode())
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method.upper(), url, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type") or ""
    finally:
        conn.close()


def fuzz(host: str, port: int, method: str, strategy: Any, statuses: set[int]) -> Any:
    @settings(
        max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def check(req: tuple[str, dict[str, str], bytes]) -> None:
        url, headers, body = req
        status, raw, ctype = send(host, port, method, url, headers, body)
        statuses.add(status)
        assert status < 500, (method, url, headers, body[:200], raw[:300])
        assert ctype.startswith("application/json"), (status, url, raw[:200])
        answer = json.loads(raw)
        if status >= 400:
            assert answer["error"]["code"] and answer["error"]["message"], answer

    return check


def test_fuzz_every_operation_never_answers_5xx(service: tuple[str, int, list[str]]) -> None:
    host, port, known = service
    doc = document()
    seen: dict[str, set[int]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = seen.setdefault(f"{method.upper()} {path}", set())
            fuzz(host, port, method, request_for(doc, path, method, op, known), statuses)()
    # The fuzz reached both sides of the API: answers and refusals.
    assert any(s < 300 for codes in seen.values() for s in codes), seen
    assert all(
        any(400 <= s < 500 for s in codes) for op, codes in seen.items() if "openapi" not in op
    ), seen
