"""One exception family for the service; driver errors are translated at the boundary."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(OrchestratorError):
    """The configuration file has mistakes; `problems` lists each with its key path."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} configuration problem(s):\n{lines}")


class StoreUnavailable(OrchestratorError):
    """PostgreSQL cannot be reached or refused the write; the caller must not acknowledge."""


class SubAppLoadError(OrchestratorError):
    """A configured in-process handler cannot be imported or built."""
