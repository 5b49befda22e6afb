"""The JSON codec used at every edge: bytes in, a validated envelope out, or a specific error."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.registry import BY_TYPE_AND_VERSION, CURRENT, upcast

MAX_MESSAGE_BYTES = 1_048_576


class ContractError(ValueError):
    """Bytes that are not a valid message: `code` is stable for counting, `detail` names the field."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def describe(error: ValidationError, prefix: str = "") -> str:
    """Every failed field with its path, e.g. `payload.quantity: Input should be greater than 0`."""
    lines = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        lines.append(f"{path or '<message>'}: {item['msg']}")
    return "; ".join(lines)


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope[Message]:
    """Parse and validate one message, lifting an old version to the current one."""
    if len(data) > max_bytes:
        raise ContractError("oversized", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError("malformed_json", f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError("malformed_json", f"expected a JSON object, got {type(raw).__name__}")
    type_, version = raw.get("type"), raw.get("version")
    if not isinstance(type_, str) or not isinstance(version, int) or isinstance(version, bool):
        raise ContractError("invalid_envelope", "type (string) and version (integer) are required")
    if type_ not in CURRENT:
        raise ContractError("unknown_message_type", f"type {type_!r} is not in the contract registry")
    if (type_, version) not in BY_TYPE_AND_VERSION:
        known = sorted(v for (t, v) in BY_TYPE_AND_VERSION if t == type_)
        raise ContractError("unsupported_version", f"{type_} version {version} is unknown; known: {known}")
    payload = raw.get("payload")
    if isinstance(payload, dict):
        raw["version"], raw["payload"] = upcast(type_, version, payload)
    model = CURRENT[type_]
    try:
        return Envelope[model].model_validate(raw)  # type: ignore[valid-type]
    except ValidationError as exc:
        code = "invalid_payload" if all(e["loc"][:1] == ("payload",) for e in exc.errors()) else "invalid_envelope"
        raise ContractError(code, describe(exc)) from None
