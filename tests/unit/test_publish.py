"""Files of messages from ops and upstream simulators: parsed to contracts, or refused naming item and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.intake import SubmitOrder
from schemas.samples import sample_payloads
from services.ops.publish import InputFileError, envelope_for, load_file

SUBMIT = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
HEADER = (
    "buyer_id,buyer_name,upstream_ref,quantity,unit_price_cents,declared_uses,documents,domestic_commitment,"
    "site_id,city,submitted_at"
)
ROW = (
    "alibaba,Alibaba Group,AL-9,40000,2500000,ai_research:70;inference:30,"
    f"D1:end_use_statement:{'b' * 64},Huawei Ascend:10000,HZ-1,Hangzhou,2026-01-26T09:00:00+00:00"
)


def item() -> dict[str, object]:
    return {"type": "SubmitOrder", **json.loads(SUBMIT.model_dump_json())}


def test_json_lines_and_json_arrays_give_the_same_messages(tmp_path: Path) -> None:
    lines, array = tmp_path / "orders.jsonl", tmp_path / "orders.json"
    lines.write_text(json.dumps(item()) + "\n\n" + json.dumps(item()) + "\n")
    array.write_text(json.dumps([item(), item()]))
    assert load_file(lines) == load_file(array) == [SUBMIT, SUBMIT]


def test_a_csv_of_orders_becomes_submissions(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"{HEADER}\n{ROW}\n")
    [order] = load_file(path)
    assert isinstance(order, SubmitOrder)
    assert (order.buyer_id, order.quantity, order.delivery_site.city) == ("alibaba", 40_000, "Hangzhou")
    assert [(u.use, u.share_pct) for u in order.declared_uses] == [("ai_research", 70), ("inference", 30)]
    assert order.documents[0].kind == "end_use_statement"
    assert order.domestic_commitment is not None and order.domestic_commitment.quantity == 10_000


def test_a_malformed_csv_row_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"{HEADER}\n{ROW.replace('ai_research:70', 'ai_research')}\n")
    with pytest.raises(InputFileError, match=r"orders\.csv:2: malformed order row"):
        load_file(path)


def test_an_unknown_type_is_refused_naming_the_item(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(item()) + "\n" + json.dumps({"type": "StealChips"}) + "\n")
    with pytest.raises(InputFileError, match=r"bad\.jsonl item 2: `type` must name a message"):
        load_file(path)


def test_an_invalid_field_is_refused_naming_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{**item(), "quantity": 0}]))
    with pytest.raises(InputFileError, match=r"item 1 \(SubmitOrder\): quantity: Input should be greater than 0"):
        load_file(path)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[{oops")
    with pytest.raises(InputFileError, match="not JSON or JSON lines"):
        load_file(path)


def test_publishing_the_same_message_twice_gives_the_same_id_and_its_business_time() -> None:
    first, again = envelope_for(SUBMIT, "ops"), envelope_for(SUBMIT, "ops")
    other = envelope_for(SUBMIT.model_copy(update={"quantity": 1}), "ops")
    assert first.id == again.id != other.id
    assert first.occurred_at == SUBMIT.submitted_at
