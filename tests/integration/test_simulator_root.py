"""The simulator's address leads a person to the phone page, not to a Graph error."""

from __future__ import annotations

from orchestrator.config import Config
from orchestrator.sandbox.runner import Sandbox


async def test_root_redirects_to_the_phone(config: Config, db_url: str) -> None:
    async with Sandbox(config, db_url) as sb:
        assert sb.http is not None
        async with sb.http.get(f"{sb.sim_url}/", allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/phone"
        async with sb.http.get(f"{sb.sim_url}/") as resp:
            assert resp.status == 200 and "<html" in (await resp.text()).lower()
