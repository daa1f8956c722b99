"""Meta's app roles against our config (docs/platform.md 2.10), pure.

An `app_roles` webhook names apps with `primary_receiver` / `secondary_receiver`. Our config
says which app is the primary (routing's default app) and which are secondary. When they
disagree, routing does not do what the config promises (idle threads and standby copies go
to other apps than we think), so every disagreement becomes one warning for operators.
"""

from __future__ import annotations

from collections.abc import Mapping

from state_machines.model import Policy

PRIMARY_ROLE = "primary_receiver"
SECONDARY_ROLE = "secondary_receiver"


def check_app_roles(roles: Mapping[str, tuple[str, ...]], policy: Policy) -> tuple[str, ...]:
    """One readable warning per disagreement between Meta's roles and the config; empty when
    they agree. Apps the webhook does not name are not judged (it may list changes only)."""
    warnings: list[str] = []
    for app_id, app_roles in sorted(roles.items()):
        names = set(app_roles)
        ours = policy.app_by_id(app_id)
        label = f"app {ours.name} ({app_id})" if ours else f"app {app_id} (not in our config)"
        if ours is None:
            if PRIMARY_ROLE in names:
                warnings.append(
                    f"Meta made {label} the primary receiver; our config's primary is "
                    f"{policy.primary.name}: idle threads are answered outside our config"
                )
            continue
        if ours.role == "primary" and PRIMARY_ROLE not in names:
            shown = "/".join(app_roles) or "no role"
            warnings.append(
                f"{label} is primary in our config but Meta gives it {shown}: make it the "
                "default app in the Page's conversation routing"
            )
        if ours.role == "secondary" and PRIMARY_ROLE in names:
            warnings.append(
                f"{label} is secondary in our config but Meta made it the primary receiver; "
                f"our config's primary is {policy.primary.name}"
            )
        if not names & {PRIMARY_ROLE, SECONDARY_ROLE}:
            warnings.append(f"{label} has no receiver role at Meta: it gets no webhooks")
    return tuple(warnings)
