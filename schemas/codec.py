"""The JSON codec used at every edge: bytes in, a validated envelope out, or a specific error."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic import ValidationError

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.registry import BY_TYPE_AND_VERSION, CURRENT, upcast

MAX_MESSAGE_BYTES = 1_048_576

# What `encode` writes first. A record of the current version that starts so is validated by pydantic straight
# from its bytes; anything else, and anything that fails, takes the general path, which names every error.
_HEAD = re.compile(rb'\{"id":"[0-9a-f-]{36}","type":"([A-Za-z0-9]{1,64})","version":([0-9]{1,4}),')


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


@cache
def envelope_model(model: type[Message]) -> Any:
    """`Envelope[model]`, made once: pydantic's own cache of parametrised generics is weak and costly to miss."""
    return Envelope[model]  # type: ignore[valid-type]


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope[Message]:
    """Parse and validate one message, lifting an old version to the current one."""
    if len(data) > max_bytes:
        raise ContractError("oversized", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    head = _HEAD.match(data)
    if head is not None:
        current = CURRENT.get(head.group(1).decode())
        if current is not None and int(head.group(2)) == current.VERSION:
            try:
                return envelope_model(current).model_validate_json(data)  # type: ignore[no-any-return]
            except ValidationError:
                pass  # the general path below reports the error with its code and field
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
        return envelope_model(model).model_validate(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        code = "invalid_payload" if all(e["loc"][:1] == ("payload",) for e in exc.errors()) else "invalid_envelope"
        raise ContractError(code, describe(exc)) from None
