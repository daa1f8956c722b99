"""The webhook parser: one entry point, `parse_payload` (or `parse_body` for raw bytes).

Modules by concept, each depending only on the ones above it in this list:

- `values`: raw values → ids, epoch ms, ints, flags (and short renderings for notes);
- `context`: where an item sits (`ItemContext`, which notes unusable values) and `Malformed`;
- `unknown`: the `UnknownEvent` kept for whatever is not understood;
- `content`: referrals and attachments inside messages and postbacks;
- `messaging` / `changes`: one item of `messaging[]`/`standby[]` or `changes[]` → events;
- `body`: the walk over the POST body (top level, entries, items) — the entry point.

Everything other packages use is exported here; import from `orchestrator.ingress.parser`.
"""

from orchestrator.ingress.decode import MalformedJSON
from orchestrator.ingress.parser.body import KNOWN_OBJECTS, ParsedBody, parse_body, parse_payload

__all__ = ["KNOWN_OBJECTS", "MalformedJSON", "ParsedBody", "parse_body", "parse_payload"]
