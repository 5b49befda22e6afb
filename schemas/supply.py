"""Manufactured batches of H200 chips, announced as they become ready."""

from __future__ import annotations

from typing import ClassVar

from schemas.base import Event, Quantity, Reference, Slug, Text, Timestamp


class BatchManufacturedV1(Event):
    """Superseded by version 2, which names the pool; kept so that old records still decode."""

    TYPE: ClassVar[str] = "BatchManufactured"
    VERSION: ClassVar[int] = 1
    batch_id: Reference
    quantity: Quantity
    site: Text
    ready_at: Timestamp


class BatchManufactured(Event):
    """A batch of chips is ready at a site and joins an allocation pool."""

    TYPE: ClassVar[str] = "BatchManufactured"
    VERSION: ClassVar[int] = 2
    batch_id: Reference
    pool_id: Slug
    quantity: Quantity
    site: Text
    ready_at: Timestamp
