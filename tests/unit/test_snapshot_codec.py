"""The snapshot codec pickles pydantic models and UUIDs by reducers of its own: what it loads must be what was
dumped, model for model (type, values, which fields were set, extras and private attributes), and a state loaded
from a snapshot must decide exactly as the state it was taken of."""

from __future__ import annotations

import asyncio
import pickle
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from schemas.codec import encode
from schemas.envelope import Envelope
from schemas.samples import placed_orders, sample_envelopes, sample_payloads
from services.approval import domain as approval_core
from services.common import digests
from services.common.journal import MemoryJournal
from services.common.partitions import PartitionedCore
from services.common.records import Record
from services.common.snapshots import Snapshot, SnapshotUnusableError, dumps, load_file, loads
from services.domain_kit import seen_ids
from services.domain_kit.seen_ids import SeenIds

INBOX = "h200.approval.inbox"


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    count: int = 0
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)


def _placed(count: int) -> list[bytes]:
    """Orders of twelve buyers with no policy yet: each is decided (held) and stays in the state."""
    return [encode(envelope) for envelope in placed_orders(0, count, buyers=12, name="codec-order")]


def _round_trip(state: Any) -> Any:
    return loads(dumps(Snapshot(INBOX, 0, 1, 0, "v", "0" * 64, state)), "test").state


def test_every_contract_model_and_envelope_loads_as_it_was_dumped() -> None:
    """Envelopes too, which plain pickle cannot write (a generic model's parametrisation has no name to look up)."""
    values = [*sample_payloads(), *sample_envelopes()]
    loaded = _round_trip(values)
    for before, after in zip(values, loaded, strict=True):
        assert type(after) is type(before)
        assert after == before
        assert after.model_fields_set == before.model_fields_set
        if isinstance(before, Envelope):
            assert encode(after) == encode(before)
        assert after.model_dump_json() == before.model_dump_json()


def test_extras_private_attributes_and_unset_fields_survive() -> None:
    model = Loose(name="a", surplus=[1, 2])
    model._cache["k"] = 3
    after = _round_trip(model)
    assert after.model_extra == {"surplus": [1, 2]}
    assert after._cache == {"k": 3}
    assert after.model_fields_set == {"name", "surplus"}
    assert "count" not in after.model_fields_set


def test_uuids_load_equal_hash_equal_and_keep_their_text() -> None:
    ids = [uuid.uuid4() for _ in range(50)] + [uuid.uuid5(uuid.NAMESPACE_URL, "h200")]
    after = _round_trip({value: str(value) for value in ids})
    assert list(after) == ids
    assert all(str(key) == text and hash(key) == hash(uuid.UUID(text)) for key, text in after.items())


def test_the_snapshot_is_smaller_than_plain_pickle_and_loads_by_plain_pickle_too() -> None:
    """The reducers change how it is written, not what a reader needs: pickle.loads alone reads the body."""
    values = sample_payloads()
    data = dumps(Snapshot(INBOX, 0, 1, 0, "v", "0" * 64, values))
    body = data.split(b"\n", 2)[2]
    assert pickle.loads(body).state == values
    assert len(body) < len(pickle.dumps(Snapshot(INBOX, 0, 1, 0, "v", "0" * 64, values), pickle.HIGHEST_PROTOCOL))


def test_a_loaded_approval_state_decides_as_the_state_it_was_taken_of() -> None:
    placed = _placed(40)
    log = [Record(INBOX, 0, offset, b"k", value) for offset, value in enumerate(placed)]
    half = len(log) // 2

    async def replay(topic: str, partition: int, until: int, start: int = 0) -> Any:
        for record in log[start:until]:
            yield record

    async def run() -> None:
        live = PartitionedCore(approval_core, replay, 1 << 20, journal=MemoryJournal())
        await live.handle_all(log[:half])
        state = live._partitions[(INBOX, 0)].state
        copy = _round_trip(state)
        assert copy == state
        other = PartitionedCore(approval_core, replay, 1 << 20, journal=MemoryJournal())
        await other.handle_all(log[:half])
        other._partitions[(INBOX, 0)].state = copy
        here = await live.handle_all(log[half:])
        there = await other.handle_all(log[half:])
        assert [encode(o) for out in here for o in out.outputs] == [encode(o) for out in there for o in out.outputs]
        assert sum(len(out.outputs) for out in here) == len(log) - half

    asyncio.run(run())


def _written(directory: Path, state: Any) -> Path:
    path = directory / "00000000000000000001.snapshot"
    path.write_bytes(dumps(Snapshot(INBOX, 0, 1, 0, "v", "0" * 64, state)))
    return path


def test_a_snapshot_file_is_streamed_as_it_is_unpickled_not_read_whole_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a restart holds at its peak: the state, not the file's bytes beside it (a state of 5M ids peaked at
    twice its 80 MB and more). Blocks (of the digest's reads and the filter's build) small beside the state here,
    as they are beside a state of millions of ids."""
    monkeypatch.setattr(digests, "BLOCK", 1 << 16)
    monkeypatch.setattr(seen_ids, "BLOCK", 1024)
    ids = SeenIds.from_run(bytearray(b"".join(sorted(uuid.UUID(int=n * 7919).bytes for n in range(200_000)))))
    path = _written(tmp_path, {"applied": ids})
    tracemalloc.start()
    try:
        loaded = load_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.state["applied"] == ids
    size = path.stat().st_size
    assert peak < 1.3 * size, f"loading a {size / 1e6:.1f} MB snapshot peaked at {peak / 1e6:.1f} MB"


def test_a_snapshot_file_altered_cut_short_or_of_another_format_is_refused_by_name(tmp_path: Path) -> None:
    path = _written(tmp_path, {"orders": list(range(1000))})
    whole = path.read_bytes()
    assert load_file(path).state == {"orders": list(range(1000))}
    for damaged, reason in (
        (whole[:-1] + bytes([whole[-1] ^ 1]), "corrupt"),
        (whole[: len(whole) // 2], "corrupt"),
        (b"h200-snapshot-0\n" + whole[16:], "not a snapshot of this format"),
        (b"", "not a snapshot of this format"),
    ):
        path.write_bytes(damaged)
        with pytest.raises(SnapshotUnusableError, match=reason) as refused:
            load_file(path)
        assert str(path) in str(refused.value)
