"""A PostgreSQL server of the fault suite's own, which the suite may stop and start under
load without disturbing the rest of the test session (pgserver's binaries, its own data
folder, a Unix socket)."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg


class FaultPostgres:
    def __init__(self) -> None:
        import pgserver

        self.dir = Path(tempfile.mkdtemp(prefix="orchestrator-faults-pg-"))
        self.pgdata = self.dir / "data"
        self.server: Any = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        uri = self.server.get_uri()
        match = re.search(r"host=([^&]+)", uri)
        assert match, uri
        self.socket_dir = match.group(1)

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver import _commands

        _commands.pg_ctl(args, pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, every connection cut."""
        self._pg_ctl(["-w", "-m", "immediate", "stop"])

    def start(self) -> None:
        self._pg_ctl(
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {self.socket_dir}",
                "-l",
                str(self.server.log),
                "start",
            ]
        )

    async def create_database(self) -> str:
        name = f"faults_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(self.url())
        try:
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        return self.url(name)

    def close(self) -> None:
        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
