"""Base classes and shared value types of every message contract."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$"), Field(examples=["bytedance"])]
"""Lower-case identifier: buyer ids, pool ids, use categories, document kinds."""

Reference = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]
"""An identifier chosen by another system (an upstream order reference, a licence or batch number)."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Quantity = Annotated[int, Field(gt=0, le=10_000_000, description="number of H200 chips")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Percent = Annotated[int, Field(ge=0, le=100)]

Gate = Literal["intake", "us_export", "cn_import", "allocation", "fulfilment"]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class Contract(BaseModel):
    """A frozen value that rejects unknown fields: the shape every contract shares."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)


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
