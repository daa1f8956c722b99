"""Meta's side of the load: signed customer messages, each retried like Meta retries (on a
5xx or a dropped connection) until acknowledged or the deadline, with the counts kept."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from orchestrator.ingress.signature import sign
from tests.faults.service import ACCOUNT_ID, BOT_SECRET


@dataclass
class Counts:
    sent: int = 0  # messages generated (each one "in")
    acknowledged: set[str] = field(default_factory=set)
    posts: int = 0
    status: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.status.items() if s >= 500)

    @property
    def other_5xx(self) -> int:
        return sum(n for s, n in self.status.items() if s >= 500 and s != 503)


_START_MS = int(time.time() * 1000)  # the 24-hour window counts from the customer's message


def message(customer: str, n: int, run: str) -> tuple[str, bytes]:
    text = f"{run} {customer} {n:04d}"
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT_ID,
                "time": _START_MS + n,
                "messaging": [
                    {
                        "sender": {"id": customer},
                        "recipient": {"id": ACCOUNT_ID},
                        "timestamp": _START_MS + n,
                        "message": {"mid": f"mid.{run}.{customer}.{n}", "text": text},
                    }
                ],
            }
        ],
    }
    return text, json.dumps(body).encode()


async def post(http: aiohttp.ClientSession, url: str, body: bytes, counts: Counts) -> int:
    headers = {"X-Hub-Signature-256": sign(BOT_SECRET, body), "Content-Type": "application/json"}
    counts.posts += 1
    try:
        async with http.post(f"{url}/webhooks/bot", data=body, headers=headers) as resp:
            await resp.read()
            counts.status[resp.status] = counts.status.get(resp.status, 0) + 1
            return resp.status
    except (TimeoutError, aiohttp.ClientError):
        counts.connection_errors += 1
        return 0


async def customer_load(
    url: str,
    customer: str,
    messages: int,
    run: str,
    counts: Counts,
    *,
    pause: float = 0.02,
    deadline_s: float = 90.0,
    on_ack: Any = None,
) -> None:
    """One customer writing `messages` messages in order; each retried until acknowledged."""
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for n in range(messages):
            text, body = message(customer, n, run)
            counts.sent += 1
            deadline = loop.time() + deadline_s
            while loop.time() < deadline:
                status = await post(http, url, body, counts)
                if status == 200:
                    counts.acknowledged.add(text)
                    if on_ack is not None:
                        await on_ack()
                    break
                await asyncio.sleep(0.2)  # Meta retries; much faster here
            await asyncio.sleep(pause)


async def load(
    url: str, customers: int, messages: int, run: str, counts: Counts, **kw: Any
) -> None:
    await asyncio.gather(
        *(
            customer_load(url, f"77{run_digits(run)}{c:06d}", messages, run, counts, **kw)
            for c in range(customers)
        )
    )


def run_digits(run: str) -> str:
    return str(zlib.crc32(run.encode()) % 10_000).zfill(4)
