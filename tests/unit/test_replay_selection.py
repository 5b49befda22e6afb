"""What an operator asks the ledger for, and the answer when the log has no such buyer, batch, order or moment."""

from __future__ import annotations

import json

import pytest
from builders_replay import ORDER_AL, ORDER_BD, at, story

from services.replay.eventlog import EventLog
from services.replay.ledger import Ledger, fold_ledger
from services.replay.records import ReplayError
from services.replay.render import ledger_json
from services.replay.selection import Known, Selection, known_things, parse_moment, shown_lines, shown_totals


@pytest.fixture(scope="module")
def log() -> EventLog:
    return story().log()


@pytest.fixture(scope="module")
def ledger(log: EventLog) -> Ledger:
    return fold_ledger(log.events)


@pytest.fixture(scope="module")
def known(log: EventLog) -> Known:
    return known_things(log.events)


def test_a_buyer_filter_shows_that_buyers_lines_only(ledger: Ledger, known: Known) -> None:
    selection = Selection(buyer="alibaba").resolve(known)

    assert {(line.buyer, line.quantity) for line in shown_lines(ledger, selection)} == {
        ("alibaba", 300),
        ("alibaba", 171),
    }
    assert set(shown_totals(ledger, selection)["buyers"]) == {"alibaba"}


def test_a_batch_filter_shows_that_batchs_lines_and_stock(ledger: Ledger, known: Known) -> None:
    selection = Selection(batch="B1").resolve(known)

    assert [(line.buyer, line.batch_id) for line in shown_lines(ledger, selection)] == [("bytedance", "B1")]
    assert set(shown_totals(ledger, selection)["batches"]) == {"B1"}


def test_an_order_is_found_by_its_id_or_by_the_buyers_reference(ledger: Ledger, known: Known) -> None:
    by_id = Selection(order=str(ORDER_AL)).resolve(known)
    by_reference = Selection(order="AL-1").resolve(known)

    assert by_reference == by_id
    assert {line.order_id for line in shown_lines(ledger, by_reference)} == {str(ORDER_AL)}


def test_filters_combine(ledger: Ledger, known: Known) -> None:
    selection = Selection(buyer="bytedance", batch="B2", order=str(ORDER_BD)).resolve(known)

    assert [(line.batch_id, line.quantity) for line in shown_lines(ledger, selection)] == [("B2", 100)]


def test_filters_choose_the_lines_shown_never_the_ledger_hash(ledger: Ledger, known: Known) -> None:
    whole = json.loads(ledger_json(ledger, Selection(), events=1))
    filtered = json.loads(ledger_json(ledger, Selection(buyer="alibaba").resolve(known), events=1))

    assert len(filtered["lines"]) < len(whole["lines"])
    assert filtered["filters"] == {"buyer": "alibaba"}
    assert filtered["ledger_hash"] == whole["ledger_hash"] == ledger.ledger_hash


def test_a_buyer_the_log_has_never_seen_is_named_with_the_buyers_it_has(known: Known) -> None:
    with pytest.raises(ReplayError) as refused:
        Selection(buyer="bytedanse").resolve(known)

    assert str(refused.value) == "no buyer 'bytedanse' in the log; buyers: alibaba, baidu, bytedance, tencent"


def test_an_unknown_batch_is_named_with_the_batches_there_are(known: Known) -> None:
    with pytest.raises(ReplayError, match=r"no batch 'B9' in the log; batches: B1, B2$"):
        Selection(batch="B9").resolve(known)


def test_an_unknown_order_is_answered_with_example_references(known: Known) -> None:
    with pytest.raises(
        ReplayError, match=r"no order 'XX-1' in the log; give an order id or a buyer's reference, e\.g\. AL-1"
    ):
        Selection(order="XX-1").resolve(known)


def test_a_buyer_without_lines_is_known_and_shows_an_empty_ledger(ledger: Ledger, known: Known) -> None:
    selection = Selection(buyer="baidu").resolve(known)

    assert shown_lines(ledger, selection) == []
    assert shown_totals(ledger, selection)["buyers"]["baidu"]["requested"] == 200


def test_a_moment_is_iso_8601_with_a_zone() -> None:
    assert parse_moment("2026-01-28T11:00:00Z") == at(120)
    assert parse_moment("2026-01-28T19:00:00+08:00") == at(120)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("yesterday", "not an ISO 8601 time: 'yesterday' (e.g. 2026-02-10T09:00:00Z)"),
        ("2026-13-01T00:00:00Z", "not an ISO 8601 time"),
        ("2026-01-28T11:00:00", "'2026-01-28T11:00:00' has no time zone; add Z or +00:00"),
    ],
)
def test_a_malformed_moment_is_refused_with_an_example(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        parse_moment(text)
