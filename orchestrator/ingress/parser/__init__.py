"""The webhook parser: one entry point, `parse_payload(body) -> ParsedBody`."""

from orchestrator.ingress.parser.envelope import ParsedBody, parse_payload

__all__ = ["ParsedBody", "parse_payload"]
