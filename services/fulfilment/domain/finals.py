"""A shipment that reached a final stage, kept as one bytes object (about 200 bytes with its key, against 1.1 KB as
objects): fulfilment keeps every shipment for good, since a step reported again however late must be told it is a
repeat or out of order, and a recall answered, from what was recorded (issue #9: state that grows with history
should cost little). `unpack(pack(s)) == s` for every final shipment: the decisions read the same shipment.

Layout: stage, held_from (255: none), suspended, quantity (4 bytes), order id (16), the pool, buyer and batch
names (a length byte each, UTF-8), then each step as its code and its time in microseconds since the Unix epoch
(8 bytes, signed). Times come back in UTC: the same instants, which is all a decision compares.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import get_args
from uuid import UUID

from schemas.fulfilment import Step
from services.fulfilment.domain.shipments import Line, Shipment, Stage

STAGES: tuple[Stage, ...] = get_args(Stage)
STEPS: tuple[Step, ...] = get_args(Step)
_HEAD = struct.Struct(">BBBI16s")
_STEP = struct.Struct(">Bq")
_NONE = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def pack(shipment: Shipment) -> bytes:
    line = shipment.line
    held = _NONE if shipment.held_from is None else STAGES.index(shipment.held_from)
    parts = [_HEAD.pack(STAGES.index(shipment.stage), held, shipment.suspended, line.quantity, line.order_id.bytes)]
    for name in (line.pool_id, line.buyer_id, line.batch_id):
        text = name.encode()
        if len(text) > 255:
            raise ValueError(f"a name of {len(text)} bytes does not fit a final shipment's record: {name[:40]!r}")
        parts.append(bytes([len(text)]) + text)
    parts += [_STEP.pack(STEPS.index(step), (at - _EPOCH) // _MICROSECOND) for step, at in shipment.steps]
    return b"".join(parts)


def unpack(allocation_id: UUID, data: bytes) -> Shipment:
    stage, held, suspended, quantity, order = _HEAD.unpack_from(data)
    offset, names = _HEAD.size, []
    for _ in range(3):
        length = data[offset]
        names.append(data[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    pool, buyer, batch = names
    steps = [(STEPS[code], _EPOCH + micros * _MICROSECOND) for code, micros in _STEP.iter_unpack(data[offset:])]
    return Shipment(
        Line(allocation_id, pool, UUID(bytes=order), buyer, batch, quantity),
        STAGES[stage],
        None if held == _NONE else STAGES[held],
        steps,
        bool(suspended),
    )
