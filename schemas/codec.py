"""The JSON codec used at every edge: bytes in, a validated envelope out, or a specific error.

`decode` raises ContractError and nothing else, in time and memory bounded by the size limit, whatever the
bytes: a record is untrusted input and one bad record must never stop the service that reads it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import ValidationError

from schemas.base import CANONICAL_FORM, Message
from schemas.envelope import Envelope, envelope_model
from schemas.registry import BY_TYPE_AND_VERSION, CURRENT, upcast

M = TypeVar("M", bound=Message)

MAX_MESSAGE_BYTES = 1_048_576
MAX_DEPTH = 64
"""Objects and arrays nested deeper are refused (`too_deep`); our contracts nest four levels at most."""
MAX_NUMBER_CHARS = 40
"""Longer number literals are refused (`number_too_long`): no quantity, price or revision needs more, and
Python refuses to convert integers of more than 4,300 digits anyway."""

# What `encode` writes first. A record of the current version that starts so is validated by pydantic straight
# from its bytes, and accepted there only if it is exactly what `encode` makes of the result (canonical): no
# duplicate key, no boolean for a number, nothing the general path would refuse. Anything else takes the
# general path, which names every error.
_HEAD = re.compile(rb'\{"id":"[0-9a-f-]{36}","type":"([A-Za-z0-9]{1,64})","version":([0-9]{1,4}),')
# A number literal (after a colon, comma or bracket, as encode writes them: no spaces) of MAX_NUMBER_CHARS digits or
# more: the general path refuses those (number_too_long), so the canonical one must not take them. Digits inside a
# string (a document's SHA-256 of zeros, a numeric reference) are no number: matching them too, as a plain search
# for a digit run did, sent every order whose hash held forty digits in a row down the general path (approval
# spent 14% of its time there in the pipeline bench). A string that holds `:` followed by forty digits still goes
# the general way, which is slower, never wrong.
_LONG_NUMBER = re.compile(rb"[:,\[]-?[0-9]{%d}" % MAX_NUMBER_CHARS)
# The same search done by bytes.translate and two substring searches, in C without a regex engine's try at every
# position: 1.1 us for a 650-byte record instead of 3.2 (a fifth of a decode). Each byte becomes its class: a digit
# "0", a byte that may open a number ":", a minus "-", anything else "x"; a long literal is then ":" or ":-" and
# MAX_NUMBER_CHARS zeros (tests/unit/test_codec_hardening.py checks both searches agree).
_CLASSES = bytes(
    ord("0") if byte in b"0123456789" else ord(":") if byte in b":,[" else byte if byte == ord("-") else ord("x")
    for byte in range(256)
)
_LONG_CLASSES = (b":" + b"0" * MAX_NUMBER_CHARS, b":-" + b"0" * MAX_NUMBER_CHARS)


def has_long_number(data: bytes) -> bool:
    """Whether `data` holds a number literal of MAX_NUMBER_CHARS digits or more (as _LONG_NUMBER finds them)."""
    classes = data.translate(_CLASSES)
    return _LONG_CLASSES[0] in classes or _LONG_CLASSES[1] in classes


class ContractError(ValueError):
    """Bytes that are not a valid message: `code` is stable for counting, `detail` names the field."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def describe(error: ValidationError, prefix: str = "", shown: int = 20) -> str:
    """The failed fields with their paths, e.g. `payload.quantity: Input should be greater than 0` (the first
    `shown` of them: a record with a hundred thousand unknown keys must not make a message of megabytes)."""
    lines = []
    for item in error.errors(include_url=False)[:shown]:
        path = ".".join(str(part)[:64] for part in (prefix, *item["loc"]) if part != "")
        lines.append(f"{path or '<message>'}: {item['msg']}")
    if error.error_count() > shown:
        lines.append(f"and {error.error_count() - shown} more")
    return "; ".join(lines)


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope[Message]:
    """Parse and validate one message, lifting an old version to the current one."""
    if len(data) > max_bytes:
        raise ContractError("oversized", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    fast = _canonical(data)
    return fast if fast is not None else decode_general(data)


def _canonical(data: bytes) -> Envelope[Message] | None:
    """The envelope of a record exactly as `encode` writes it, or None: then the general path decides."""
    head = _HEAD.match(data)
    if head is None or has_long_number(data):
        return None
    current = CURRENT.get(head.group(1).decode())
    if current is None or int(head.group(2)) != current.VERSION:
        return None
    model = envelope_model(current)
    try:
        envelope = model.__pydantic_validator__.validate_json(data, context=CANONICAL_FORM)
    except ValidationError:
        return None
    # Comparing with the canonical form costs less than validation and rules out everything lax parsing lets
    # through (duplicate keys, `true` for 1, "100" for 100, escapes, spacing).
    return envelope if model.__pydantic_serializer__.to_json(envelope) == data else None


def decode_general(data: bytes) -> Envelope[Message]:
    """The path every record can take (decode tries a faster one first): strict JSON, then strict validation."""
    raw = _parse(data)
    if not isinstance(raw, dict):
        raise ContractError("malformed_json", f"expected a JSON object, got {type(raw).__name__}")
    type_, version = raw.get("type"), raw.get("version")
    if not isinstance(type_, str) or not isinstance(version, int) or isinstance(version, bool):
        raise ContractError("invalid_envelope", "type (string) and version (integer) are required")
    if type_ not in CURRENT:
        raise ContractError("unknown_message_type", f"type {type_[:64]!r} is not in the contract registry")
    if (type_, version) not in BY_TYPE_AND_VERSION:
        known = sorted(v for (t, v) in BY_TYPE_AND_VERSION if t == type_)
        raise ContractError("unsupported_version", f"{type_} version {version} is unknown; known: {known}")
    payload = raw.get("payload")
    if isinstance(payload, dict):
        raw["version"], raw["payload"] = upcast(type_, version, payload)
    try:
        # Strict: a boolean is never a number, a string never an integer. From JSON text, so that times and ids
        # are read from their JSON strings as the fast path reads them.
        return envelope_model(CURRENT[type_]).model_validate_json(json.dumps(raw), strict=True)  # type: ignore[no-any-return]
    except ValidationError as exc:
        code = "invalid_payload" if all(e["loc"][:1] == ("payload",) for e in exc.errors()) else "invalid_envelope"
        raise ContractError(code, describe(exc)) from None


def decode_payload(
    model: type[M], data: bytes, *, defaults: dict[str, Any] | None = None, max_bytes: int = MAX_MESSAGE_BYTES
) -> M:
    """A bare payload (no envelope), validated exactly as `decode` validates one inside an envelope: for edges that
    take a message's fields alone, such as the HTTP API. `defaults` fill fields the data leaves out."""
    if len(data) > max_bytes:
        raise ContractError("oversized", f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    raw = _parse(data)
    if not isinstance(raw, dict):
        raise ContractError("malformed_json", f"expected a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate_json(json.dumps({**(defaults or {}), **raw}), strict=True)
    except ValidationError as exc:
        raise ContractError("invalid_payload", describe(exc)) from None


_FIRST_TOKEN = re.compile(r"[ \t\n\r]*(.?)", re.DOTALL)
"""The first character after JSON's whitespace (none if there is none)."""
_KIND_OPENED_BY = {"[": "list", '"': "str", "t": "bool", "f": "bool", "n": "null"}


def _parse(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError("malformed_json", f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    # Every message is an object: anything else is refused before it is parsed (an array of 300,000 empty arrays,
    # within the size limit, took 0.85 s of CPU to parse only to be refused for not being an object).
    first = _FIRST_TOKEN.match(text)  # always matches: its group is empty only for text of whitespace alone
    opening = first.group(1) if first is not None else ""
    if opening != "{":
        kind = _KIND_OPENED_BY.get(opening, "number" if opening and opening in "-0123456789" else "")
        if kind:
            raise ContractError("malformed_json", f"expected a JSON object, got {kind}")
        found = f"it begins with {opening!r} (an object begins with '{{')" if opening else "it holds no value"
        raise ContractError("malformed_json", f"not valid JSON: {found}")
    try:
        raw = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_fraction,
            parse_constant=_constant,
        )
    except RecursionError:
        raise ContractError("too_deep", f"objects and arrays nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise ContractError("malformed_json", f"not valid JSON: {exc}") from None
    # Counting brackets first keeps the depth check off the common case (a few levels, a few brackets).
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        raise ContractError("too_deep", f"objects and arrays nested more than {MAX_DEPTH} levels deep")
    return raw


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        # Last-wins, as json.loads and pydantic would do it, lets two readers of one record see two messages.
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ContractError("duplicate_key", f"key {key[:64]!r} appears more than once in one object")
            seen.add(key)
    return found


def _number(token: str) -> None:
    if len(token) > MAX_NUMBER_CHARS:
        raise ContractError(
            "number_too_long", f"a number of {len(token)} characters (the limit is {MAX_NUMBER_CHARS}): {token[:20]}..."
        )


def _integer(token: str) -> int:
    _number(token)
    return int(token)


def _fraction(token: str) -> float | int:
    _number(token)
    value = float(token)
    if not math.isfinite(value):
        raise ContractError("number_too_long", f"the number {token} is out of range")
    # JSON Schema counts 1000.0 as an integer (a number with no fraction), and so do we: every number in our
    # contracts is whole, and a JSON library that writes every number with a fraction must not be refused.
    if value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _constant(name: str) -> None:
    raise ContractError("malformed_json", f"{name} is not a JSON value")


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in a parsed value (iteratively: the value may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
