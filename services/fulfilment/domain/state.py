"""What fulfilment remembers: every shipment, open ones as objects and ended ones packed (finals.py), and the ids
of the inputs it folded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

from services.domain_kit.seen_ids import SeenIds
from services.fulfilment.domain.finals import pack, unpack
from services.fulfilment.domain.shipments import ENDED, Shipment


@dataclass
class State:
    shipments: dict[UUID, Shipment] = field(default_factory=dict)
    """Shipments that may still take a step, by allocation id."""
    ended: dict[bytes, bytes] = field(default_factory=dict)
    """Shipments that take no step any more (delivered, lost, refused, cancelled), packed, by allocation id bytes."""
    applied: SeenIds = field(default_factory=SeenIds)
    """Ids of the input envelopes already folded: a redelivered input decides nothing (16 bytes an id:
    services.domain_kit.seen_ids)."""

    def shipment(self, allocation_id: UUID) -> Shipment | None:
        """The line's shipment, open or ended; None if no word of the line has come. Changes to an ended one count
        only once given back to `keep`."""
        found = self.shipments.get(allocation_id)
        if found is not None:
            return found
        packed = self.ended.get(allocation_id.bytes)
        return None if packed is None else unpack(allocation_id, packed)

    def keep(self, shipment: Shipment) -> None:
        """Store the shipment as it is now: packed once it has ended."""
        allocation_id = shipment.line.allocation_id
        if shipment.stage in ENDED:
            self.shipments.pop(allocation_id, None)
            self.ended[allocation_id.bytes] = pack(shipment)
        else:
            self.shipments[allocation_id] = shipment

    def every_shipment(self) -> Iterator[Shipment]:
        """Every shipment, open ones first (for read models and tests)."""
        yield from self.shipments.values()
        for key, packed in self.ended.items():
            yield unpack(UUID(bytes=key), packed)


def initial_state() -> State:
    return State()
