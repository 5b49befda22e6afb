"""OrderRefs and OrderIds (services.replay.order_refs), checked against a dict and a set of texts: what the
replay's table, filters and checkpoints kept before."""

from __future__ import annotations

import pickle
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from services.replay import order_refs
from services.replay.order_refs import OrderIds, OrderRefs

orders = st.integers(0, 200).map(lambda n: UUID(int=n * 0x9E3779B97F4A7C15 % 2**128))
references = st.text(alphabet="AZaz09._:/-", min_size=1, max_size=128)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(orders, references), max_size=300))
def test_it_answers_as_a_dict_of_texts_through_merges_and_replacements(placed: list[tuple[UUID, str]]) -> None:
    original = order_refs.MERGE_AT
    order_refs.MERGE_AT = 4  # merge often: references in the recent dict, in the run, and replaced in both
    try:
        refs, oracle = OrderRefs(), {}
        for order, reference in placed:
            refs.add(order, reference)
            oracle[str(order)] = reference  # the later OrderPlaced holds, as a dict assignment does
            assert refs[str(order)] == reference
        assert len(refs) == len(oracle)
        assert dict(refs.items()) == oracle
        assert sorted(refs) == sorted(oracle)
        loaded = pickle.loads(pickle.dumps(refs, protocol=5))
        assert dict(loaded.items()) == oracle
    finally:
        order_refs.MERGE_AT = original


def test_a_missing_or_malformed_order_id_is_no_reference() -> None:
    refs = OrderRefs()
    refs.add(UUID(int=7), "PO-7")
    assert refs.get(str(UUID(int=8)), "short") == "short"
    assert refs.get("not-a-uuid") is None
    assert str(UUID(int=7)) in refs and "PO-7" not in refs


@given(st.lists(orders, max_size=100), orders)
def test_order_ids_are_asked_about_by_their_text(held: list[UUID], asked: UUID) -> None:
    ids = OrderIds()
    for order in held:
        ids.add(order)
    assert (str(asked) in ids) == (asked in held)
    assert "PO-1" not in ids and 7 not in ids
    assert len(ids) == len(set(held))
