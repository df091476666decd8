"""The ledger's hash chain: the canonical form of an event and its hash. Pure; no Django.

See docs/canonical-encoding.md for the rules. The genesis event's prev_hash is 64 zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clinaiops.core.canonical import canonical_bytes, sha256_hex

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainFields:
    seq: int
    recorded_at: datetime
    actor_id: int | None
    actor_role: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    request_id: str
    ip: str | None
    payload: dict[str, Any]
    prev_hash: str

    def canonical(self) -> bytes:
        return canonical_bytes(
            {
                "seq": self.seq,
                "recorded_at": self.recorded_at,
                "actor_id": self.actor_id,
                "actor_role": self.actor_role,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "outcome": self.outcome,
                "request_id": self.request_id,
                "ip": self.ip,
                "payload": self.payload,
                "prev_hash": self.prev_hash,
            }
        )

    def digest(self) -> str:
        return sha256_hex(self.canonical())
