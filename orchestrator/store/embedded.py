"""The embedded PostgreSQL: a server of our own in a project folder, robust to `kill -9`.

PostgreSQL 16 comes from the `pgserver` wheel (its binaries, `initdb` and `pg_ctl`); the life
cycle is ours, because pgserver's own bookkeeping trusts pid files and a list of user pids
that a `kill -9` leaves stale (the next start then failed, or a later stop left PostgreSQL
running). Here:

- **One lock** (`<data_dir>/.lock`, `flock`) serialises every start and stop decision, across
  processes.
- **Users** are files `<data_dir>/.users/<pid>` holding the process's start time, so a dead
  process (or a recycled pid) is recognised and pruned before any decision.
- **Stale state** after a killed postmaster is cleaned before starting: leftover backends of
  this cluster (found by their working directory) are killed, and stale `postmaster.pid` and
  socket lock files removed. A running postmaster is recognised by its process, not by a file.
- **A watcher process** per user (detached, tiny) waits for that user to exit: when the last
  user is gone — even by `kill -9` — it stops PostgreSQL, so no orphan server stays behind;
  while the user lives, it restarts a PostgreSQL that died (the pool reconnects by itself).

Layout: `<data_dir>/pg/` is the cluster (a folder made by earlier versions, with the cluster
at the top, is used as it is), `<data_dir>/pg/postgres.log` its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from orchestrator.errors import StoreUnavailable

SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver's convention
LOCK_WAIT_S = 120.0
WATCH_INTERVAL_S = 0.5


class EmbeddedError(StoreUnavailable):
    """The embedded server could not be started or stopped."""


def _pg_commands() -> Any:
    import warnings

    with warnings.catch_warnings():
        # platformdirs (imported by pgserver) warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from pgserver import _commands

    return _commands


class EmbeddedPostgres:
    """One data folder's server. `start()` joins (or starts) it; `cleanup()` leaves it, and
    stops it if this was the last user."""

    _joined: dict[Path, int] = {}  # per-process reference counts, by data folder

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir).resolve()
        legacy = (self.root / "PG_VERSION").exists()
        self.cluster = self.root if legacy else self.root / "pg"
        self.lock_path = self.root / ".lock"
        self.users_dir = self.root / ".users"
        self.log_path = self.cluster / ("log" if legacy else "postgres.log")
        self.system_user = SYSTEM_USER if os.geteuid() == 0 else None
        self.url = ""

    # -- public ------------------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._prune_users()
            self._ensure_cluster()
            info = self._running()
            if info is None:
                self._clear_stale()
                self._pg_ctl_start()
                info = self._running()
                if info is None:
                    raise EmbeddedError(self._start_failure("it exited at once"))
            count = self._joined.get(self.root, 0)
            if count == 0:
                self._register(os.getpid())
            self._joined[self.root] = count + 1
        self.url = self._url(info)
        if watch and count == 0:
            self._spawn_watcher(os.getpid())
        return self.url

    def cleanup(self) -> None:
        count = self._joined.get(self.root, 0) - 1
        if count > 0:
            self._joined[self.root] = count
            return
        self._joined.pop(self.root, None)
        self.leave(os.getpid())

    def leave(self, pid: int) -> bool:
        """Unregister `pid`; stop the server if no live user is left. True if it stopped it."""
        if not self.root.exists():
            return False
        with self._locked():
            (self.users_dir / str(pid)).unlink(missing_ok=True)
            if self._prune_users():
                return False
            info = self._running()
            if info is None:
                return False
            self._stop(info)
            return True

    def force_stop(self) -> bool:
        """Stop the server whoever uses it (`make clean` deletes the folder next)."""
        if not self.root.exists():
            return False
        with self._locked():
            info = self._running()
            if info is not None:
                self._stop(info)
            else:
                self._clear_stale()
            for entry in self.users_dir.glob("*") if self.users_dir.exists() else ():
                entry.unlink(missing_ok=True)
            return info is not None

    def is_running(self) -> bool:
        return self._running() is not None

    # -- users -------------------------------------------------------------------------------

    def _register(self, pid: int) -> None:
        self.users_dir.mkdir(exist_ok=True)
        created = psutil.Process(pid).create_time()
        (self.users_dir / str(pid)).write_text(json.dumps({"pid": pid, "created": created}))

    def _prune_users(self) -> list[int]:
        """Live users; entries of dead processes (or of a recycled pid) are removed."""
        alive: list[int] = []
        if not self.users_dir.exists():
            return alive
        for entry in self.users_dir.iterdir():
            try:
                data = json.loads(entry.read_text())
                proc = psutil.Process(int(data["pid"]))
                if abs(proc.create_time() - float(data["created"])) < 1.0 and proc.is_running():
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        alive.append(proc.pid)
                        continue
            except (ValueError, KeyError, OSError, psutil.Error):
                pass
            entry.unlink(missing_ok=True)
        return alive

    # -- the server --------------------------------------------------------------------------

    def _running(self) -> dict[str, Any] | None:
        """The postmaster serving this cluster, read from postmaster.pid and confirmed by the
        process itself; None when there is none (a stale file does not count)."""
        pid_file = self.cluster / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not self._is_our_postgres(pid, postmaster=True):
            return None
        deadline = time.monotonic() + 60
        while len(lines) < 8 or lines[7].strip() != "ready":
            if time.monotonic() > deadline or not psutil.pid_exists(pid):
                return None
            time.sleep(0.1)
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
        return {"pid": pid, "port": int(lines[3]), "socket_dir": lines[4].strip()}

    def _is_our_postgres(self, pid: int, *, postmaster: bool = False) -> bool:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
                return False
            if postmaster:
                return str(self.cluster) in " ".join(proc.cmdline()) or (
                    Path(proc.cwd()) == self.cluster
                )
            return Path(proc.cwd()) == self.cluster
        except (psutil.Error, OSError):
            return False

    def _leftovers(self) -> list[psutil.Process]:
        out = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] == "postgres" and self._is_our_postgres(proc.pid):
                out.append(proc)
        return out

    def _clear_stale(self) -> None:
        """After a killed postmaster: its orphaned backends still hold the shared memory and
        would make the next start fail; kill them, then remove stale lock files."""
        procs = self._leftovers()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=10)
        pid_file = self.cluster / "postmaster.pid"
        if pid_file.exists():
            try:
                socket_dir = Path(pid_file.read_text().splitlines()[4].strip())
            except (OSError, IndexError):
                socket_dir = None
            pid_file.unlink(missing_ok=True)
            if socket_dir is not None:
                for lock in socket_dir.glob(".s.PGSQL.*.lock"):
                    lock.unlink(missing_ok=True)

    def _socket_dir(self) -> Path:
        if len(str(self.cluster / ".s.PGSQL.5432")) < 100:
            return self.cluster
        digest = hashlib.sha256(str(self.cluster).encode()).hexdigest()[:12]
        path = Path("/tmp") / f"orchestrator-pg-{digest}"
        path.mkdir(exist_ok=True)
        path.chmod(0o777)
        return path

    def _ensure_cluster(self) -> None:
        cmds = _pg_commands()
        if self.system_user is not None:
            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(cmds.POSTGRES_BIN_PATH)
            ensure_folder_permissions(cmds.POSTGRES_BIN_PATH, 0o055)
            ensure_folder_permissions(cmds.POSTGRES_BIN_PATH.parent / "lib", 0o044)
        if (self.cluster / "PG_VERSION").exists():
            return
        self.cluster.mkdir(parents=True, exist_ok=True)
        if self.system_user is not None:
            import pwd

            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.cluster)
            entry = pwd.getpwnam(self.system_user)
            os.chown(self.cluster, entry.pw_uid, entry.pw_gid)
        try:
            cmds.initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.cluster,
                user=self.system_user,
                timeout=120,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedError(
                f"initdb failed in {self.cluster} ({exc}); remove the folder and try again"
            ) from exc

    def _pg_ctl_start(self) -> None:
        socket_dir = self._socket_dir()
        args = ["-w", "-t", "60", "-o", '-h ""', "-o", f"-k {socket_dir}"]
        args += ["-l", str(self.log_path), "start"]
        try:
            _pg_commands().pg_ctl(args, pgdata=self.cluster, user=self.system_user, timeout=90)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedError(self._start_failure(str(exc))) from exc

    def _start_failure(self, reason: str) -> str:
        last = ""
        with contextlib.suppress(OSError):
            lines = [x for x in self.log_path.read_text(errors="replace").splitlines() if x]
            last = lines[-1] if lines else ""
        return (
            f"the embedded PostgreSQL in {self.cluster} did not start ({reason})"
            + (f": {last}" if last else "")
            + f"; see {self.log_path}, or `make clean` to start from an empty database"
        )

    def _stop(self, info: dict[str, Any]) -> None:
        try:
            _pg_commands().pg_ctl(
                ["-w", "-t", "30", "-m", "fast", "stop"],
                pgdata=self.cluster,
                user=self.system_user,
                timeout=40,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            with contextlib.suppress(psutil.Error):
                psutil.Process(info["pid"]).send_signal(signal.SIGQUIT)  # immediate shutdown
        with contextlib.suppress(psutil.Error):
            psutil.Process(info["pid"]).wait(10)
        self._clear_stale()

    @staticmethod
    def _url(info: dict[str, Any]) -> str:
        return f"postgresql://postgres:@/postgres?host={info['socket_dir']}&port={info['port']}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedError(
                            f"another process holds {self.lock_path} for over "
                            f"{LOCK_WAIT_S:.0f}s; is an `orchestrator` command stuck?"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the watcher -------------------------------------------------------------------------

    def _spawn_watcher(self, pid: int) -> None:
        # Started through a shell that exits at once: the watcher is adopted by init, in its
        # own session (Ctrl-C in the service's terminal does not reach it), and nothing here
        # waits for it.
        cmd = [sys.executable, "-m", "orchestrator.store.embedded", str(self.root), str(pid)]
        subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "sh", *cmd],
            check=True,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _import_root()},
            timeout=30,
        )

    def watch(self, pid: int) -> None:
        """Until `pid` exits: restart a server that died while `pid` still uses it. Then
        leave on its behalf (stopping the server if it was the last user)."""
        try:
            owner = psutil.Process(pid)
        except psutil.Error:
            self.leave(pid)
            return
        while owner.is_running() and owner.status() != psutil.STATUS_ZOMBIE:
            time.sleep(WATCH_INTERVAL_S)
            if (self.users_dir / str(pid)).exists() and not self.is_running():
                with contextlib.suppress(EmbeddedError), self._locked():
                    if (self.users_dir / str(pid)).exists() and self._running() is None:
                        self._clear_stale()
                        self._pg_ctl_start()
        self.leave(pid)


def _import_root() -> str:
    """Where `orchestrator` is importable from, for the watcher (cwd may be anywhere)."""
    root = str(Path(__file__).resolve().parents[2])
    extra = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{extra}" if extra else root


def _main(argv: list[str]) -> int:
    """`--stop DIR…` (used by `make clean`), or `DIR PID`: the watcher."""
    if argv and argv[0] == "--stop":
        for folder in argv[1:]:
            if EmbeddedPostgres(folder).force_stop():
                print(f"stopped the embedded PostgreSQL in {folder}")
        return 0
    root, pid = argv[0], int(argv[1])
    with contextlib.suppress(Exception):
        EmbeddedPostgres(root).watch(pid)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(_main(sys.argv[1:]))
