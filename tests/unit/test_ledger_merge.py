"""LedgerFold.merge: folding two runs of events apart and merging them gives the ledger of folding them one after
the other, whatever the runs hold (repeated lines, steps of one shipment split across them, releases before their
lines). verify's stable-order check folds each partition apart and merges them in reverse, so it relies on this."""

from __future__ import annotations

import random
from typing import Any
from uuid import uuid4

import pytest
from builders_replay import revoked_story, story

from schemas.allocation import ChipsAllocated
from schemas.envelope import Envelope
from schemas.supply import BatchManufactured
from services.replay.ledger import LedgerFold
from services.replay.packed_lines import Names


@pytest.fixture(scope="module")
def events() -> list[Envelope[Any]]:
    """The events of two stories, and for each line and batch a second version under the same id (another
    quantity): which of the two a fold keeps depends on their order."""
    found = [*story().log().events, *revoked_story().log().events]
    rivals = [
        e.model_copy(
            update={"id": uuid4(), "payload": e.payload.model_copy(update={"quantity": e.payload.quantity + 1})}
        )
        for e in found
        if isinstance(e.payload, ChipsAllocated | BatchManufactured)
    ]
    return [*found, *rivals]


@pytest.mark.parametrize("seed", range(60))
def test_two_folds_merged_give_the_ledger_of_one_fold_over_both(events: list[Envelope[Any]], seed: int) -> None:
    rng = random.Random(seed)
    chosen = [rng.choice(events) for _ in range(rng.randint(1, 2 * len(events)))]
    cut = rng.randint(0, len(chosen))
    names = Names()
    first, second = LedgerFold(names=names), LedgerFold(names=names)
    for envelope in chosen[:cut]:
        first.add(envelope)
    for envelope in chosen[cut:]:
        second.add(envelope)
    whole = LedgerFold()
    for envelope in chosen:
        whole.add(envelope)

    first.merge(second)

    assert first.ledger().ledger_hash == whole.ledger().ledger_hash


def test_folds_with_their_own_names_refuse_to_merge(events: list[Envelope[Any]]) -> None:
    with pytest.raises(ValueError, match="sharing one Names"):
        LedgerFold().merge(LedgerFold())
