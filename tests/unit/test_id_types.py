"""IdTypes: every id added is found with its type, whether still recent or merged into the sorted run; an id
never added is not found; a pickle (what a ledger checkpoint stores) keeps them all."""

from __future__ import annotations

import pickle
import random
from uuid import UUID

import pytest

from services.domain_kit import seen_ids
from services.replay.id_types import MERGE_AT, IdTypes


@pytest.mark.parametrize("block", [seen_ids.BLOCK, 5])
@pytest.mark.parametrize("count", [0, 1, MERGE_AT - 1, MERGE_AT, 3 * MERGE_AT + 17])
def test_each_id_keeps_its_type_across_merges_and_a_pickle(
    count: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seen_ids, "BLOCK", block)  # small: runs of many blocks, merged block by block
    rng = random.Random(count)
    names = [f"Type{n}" for n in range(7)]
    added = {UUID(int=rng.getrandbits(128)): rng.choice(names) for _ in range(count)}
    found = IdTypes()
    for event_id, name in added.items():
        found.add(event_id, name)
    absent = [UUID(int=rng.getrandbits(128)) for _ in range(200)]

    for kept in (found, pickle.loads(pickle.dumps(found))):
        assert len(kept) == len(added)
        assert all(kept.get(event_id) == name for event_id, name in added.items())
        assert all(kept.get(event_id) is None for event_id in absent if event_id not in added)


def test_a_257th_type_is_refused_by_name() -> None:
    found = IdTypes()
    for n in range(256):
        found.add(UUID(int=n), f"Type{n}")
    with pytest.raises(ValueError, match="'Type256' is one too many"):
        found.add(UUID(int=256), "Type256")
