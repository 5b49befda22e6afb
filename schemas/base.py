"""Base classes and shared value types of every message contract."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$"), Field(examples=["bytedance"])]
"""Lower-case identifier: buyer ids, pool ids, use categories, document kinds."""

Reference = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]
"""An identifier chosen by another system (an upstream order reference, a licence or batch number)."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Quantity = Annotated[int, Field(gt=0, le=10_000_000, description="number of H200 chips")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Percent = Annotated[int, Field(ge=0, le=100)]

_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


CANONICAL_FORM: dict[str, bool] = {"canonical": True}
"""The validation context of codec's canonical path: there the text checks below are skipped and pydantic parses
the text itself. That path keeps a decode only if re-encoding it gives back the very bytes, and a re-encoded UUID or
time is always in the form these checks require; any other spelling fails that comparison and takes the general
path, where they run. Skipping them there is a quarter of a decode (schemas.codec._canonical)."""


def _uuid_text(value: Any, info: ValidationInfo) -> Any:
    """Text must be the hyphenated form (JSON Schema's `format: uuid`): pydantic alone also reads 32 bare hex digits,
    braces and urn:uuid:, and two spellings of one id would differ as text downstream. Parsed here, since a value
    handed on as text would meet strict validation in Python mode, where text is never a UUID."""
    if not isinstance(value, str) or info.context is CANONICAL_FORM:
        return value
    if not _UUID_TEXT.match(value):
        raise ValueError("a UUID is written as 8-4-4-4-12 hex digits, e.g. 5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11")
    return UUID(value)


def _rfc3339_text(value: Any, info: ValidationInfo) -> Any:
    """Text must be RFC 3339 with its offset (JSON Schema's `format: date-time`): pydantic alone also reads a space
    for the T. Parsed here for the reason _uuid_text gives, and on the canonical path too: pydantic's own parse
    gives its TzInfo, against which every comparison of times in the cores is ten times slower than against
    datetime.timezone.utc (and a repr differs)."""
    if not isinstance(value, str):
        return value
    if info.context is CANONICAL_FORM:
        return datetime.fromisoformat(value)
    if not _RFC3339.match(value):
        raise ValueError("a time is written in RFC 3339 with its offset, e.g. 2026-01-28T09:00:00Z")
    return datetime.fromisoformat(value.upper())


Uuid = Annotated[UUID, BeforeValidator(_uuid_text)]
"""A UUID as JSON Schema's `format: uuid` reads it: the hyphenated form only."""

Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""A time as JSON Schema's `format: date-time` (RFC 3339) reads it: `T` between date and time, an offset."""

Gate = Literal["intake", "us_export", "cn_import", "allocation", "fulfilment"]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class Contract(BaseModel):
    """A frozen value that rejects unknown fields: the shape every contract shares."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # A frozen value: a deep copy of a core's state shares it instead of copying every message it holds.
        return self


class Message(Contract):
    """A payload that travels in an envelope; TYPE and VERSION are its contract identity."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    KIND: ClassVar[Literal["command", "event"]]

    @classmethod
    def schema_name(cls) -> str:
        return f"{cls.TYPE}.v{cls.VERSION}"

    def id_discriminator(self) -> str:
        """What tells apart two facts of this type that one cause may give at different times ("" for none)."""
        return ""


class Command(Message):
    """An imperative: a request that a service may accept or reject."""

    KIND: ClassVar[Literal["command", "event"]] = "command"


class Event(Message):
    """A past-tense fact: something that has happened and will not be undone."""

    KIND: ClassVar[Literal["command", "event"]] = "event"


class Reason(Contract):
    """Why something was refused, held or released: a stable code, the field at fault and words for people."""

    code: Slug
    message: Text
    field: str | None = None
    gate: Gate | None = None


class PolicyRef(Contract):
    """The exact policy revision a decision applied."""

    policy_id: Reference
    revision: Annotated[int, Field(ge=1)]

    def __str__(self) -> str:
        return f"{self.policy_id}@{self.revision}"
