"""Builds the state machine's pure `Policy` from the validated config."""

from __future__ import annotations

from orchestrator.config import Config
from state_machines import AppSpec, Policy


def build_policy(config: Config) -> Policy:
    h, d = config.handover, config.disclosure
    return Policy(
        apps=tuple(
            AppSpec(
                name=a.name,
                app_id=a.app_id,
                role=a.role,
                kind=a.kind,
                standby=a.standby,
                can_take=a.can_take,
            )
            for a in config.apps
        ),
        disclosure_text=dict(d.text),
        default_locale=d.default_locale,
        no_agent_text=dict(d.no_agent_text),
        escalation_text=dict(d.escalation_text),
        escalation_keywords=h.escalation_keywords,
        escalation_payloads=h.escalation_payloads,
        bot_failure_threshold=h.bot_failure_threshold,
        disclosure_lapse=d.lapse,
        pending_timeout=h.pending_timeout,
        human_idle_timeout=h.human_idle_timeout,
        request_policy=h.request_policy,
        default_human_app=h.default_human_app,
    )
