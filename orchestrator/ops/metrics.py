"""Prometheus metrics, one registry per application instance (tests run several at once)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.webhooks = Counter(
            "orchestrator_webhooks",
            "Webhook POSTs by app and outcome",
            ["app", "outcome"],
            registry=r,
        )
        self.events_stored = Counter(
            "orchestrator_events_stored", "Events stored, by kind", ["kind"], registry=r
        )
        self.events_duplicate = Counter(
            "orchestrator_events_duplicate", "Redelivered events ignored by dedup", registry=r
        )
        self.events_processed = Counter(
            "orchestrator_events_processed",
            "Events processed, by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.transitions = Counter(
            "orchestrator_transitions",
            "State transitions taken, by conversation channel (instagram, messenger)",
            ["transition", "channel"],
            registry=r,
        )
        self.unknown_accounts = Counter(
            "orchestrator_webhook_unknown_accounts",
            "Webhook items for an account or Page not in the config (stored, not processed), "
            "by webhook object (instagram, page)",
            ["object"],
            registry=r,
        )
        self.app_roles_mismatch = Counter(
            "orchestrator_app_roles_mismatch",
            "app_roles webhooks whose roles disagree with the config (see the warning logged)",
            registry=r,
        )
        self.refusals = Counter(
            "orchestrator_refusals", "Actions refused, by rule code", ["code"], registry=r
        )
        self.outbox = Counter(
            "orchestrator_outbox",
            "Outbox rows finished, by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.graph_errors = Counter(
            "orchestrator_graph_errors", "Graph API errors by code", ["code"], registry=r
        )
        self.graph_latency = Histogram(
            "orchestrator_graph_seconds", "Graph API call latency", ["method"], registry=r
        )
        self.processing_lag = Histogram(
            "orchestrator_processing_lag_seconds",
            "Event received → processed",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.queue_depth = Gauge(
            "orchestrator_queue_depth", "Events waiting to be processed", registry=r
        )
        self.oldest_pending = Gauge(
            "orchestrator_oldest_pending_seconds", "Age of the oldest pending event", registry=r
        )
        self.outbox_depth = Gauge(
            "orchestrator_outbox_depth", "Outbox rows pending or in flight", registry=r
        )
        self.dead_letters = Gauge(
            "orchestrator_dead_letters", "Outbox rows dead-lettered", registry=r
        )
        self.disclosures_undelivered = Gauge(
            "orchestrator_disclosures_undelivered",
            "Disclosures dead-lettered (Meta never got them; the disclosure was re-armed)",
            registry=r,
        )
        self.held_automated = Gauge(
            "orchestrator_automated_messages_held",
            "Automated messages not sent because the disclosure before them was not delivered",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
