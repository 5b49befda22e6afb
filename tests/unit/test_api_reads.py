"""The API's reads over the read model (services.api.reads, services.api.supply): the ledger as of a moment is what
replay folds from the log as of that moment, the filters are replay's, and supply against demand over time agrees
with the ledger's totals at every moment it names."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from builders_replay import World, at, revoked_story, story
from fake_read_model import FakeReadModel

from services.api.reads import UnknownError, ledger_document, parse_as_of
from services.api.supply import supply_and_demand
from services.replay.ledger import fold_ledger, iso
from services.replay.records import ReplayError


def _model(world: World) -> tuple[FakeReadModel, list[Any]]:
    events = world.log().events
    return FakeReadModel().apply(events), events


def _moments(document: dict[str, Any]) -> list[datetime]:
    """Every moment a figure changed, and a second before and after each."""
    found = [datetime.fromisoformat(point["at"]) for point in document["points"]]
    return sorted({m + timedelta(seconds=d) for m in found for d in (-1, 0, 1)})


@pytest.mark.parametrize("world", [story, revoked_story], ids=["story", "revoked"])
def test_the_ledger_as_of_any_moment_is_what_replay_folds_from_the_log_as_of_then(world: Any) -> None:
    model, events = _model(world())

    for moment in _moments(supply_and_demand(model)):
        document = ledger_document(model, moment)
        replayed = fold_ledger(events, moment)

        assert document["as_of"] == iso(moment)
        assert document["totals"] == replayed.totals(), moment
        lines = {(line["allocation_id"], line["quantity"]) for line in document["lines"]}
        assert lines == {(line.allocation_id, line.quantity) for line in replayed.lines}, moment


def test_a_line_is_shown_as_it_stood_then_released_and_shipped_only_once_it_was() -> None:
    world = story()
    model, _ = _model(world)
    lost = str(world.allocation_of("alibaba", "B2"))
    allocated_at = next(line["allocated_at"] for line in model.ledger() if line["allocation_id"] == lost)

    def line(moment: datetime) -> dict[str, Any]:
        return next(line for line in ledger_document(model, moment)["lines"] if line["allocation_id"] == lost)

    before = line(datetime.fromisoformat(allocated_at) + timedelta(seconds=1))
    assert (before["status"], before.get("shipment"), before.get("shipped_at")) == ("allocated", None, None)
    in_transit = line(at(180 + 60))
    assert (in_transit["status"], in_transit["shipment"]) == ("allocated", "shipped")
    assert line(at(600))["status"] == "released"
    assert all(shown["allocation_id"] != lost for shown in ledger_document(model, at(59))["lines"])


def test_the_ledger_now_is_the_read_model_s_and_its_totals_are_replay_s() -> None:
    model, events = _model(story())

    document = ledger_document(model)

    assert document["as_of"] is None
    assert document["totals"] == fold_ledger(events).totals()
    assert len(document["lines"]) == len(model.ledger())
    assert all(isinstance(line["quantity"], int) for line in document["lines"])


def test_the_ledger_filtered_by_buyer_and_batch_shows_their_lines_and_totals_only() -> None:
    model, _ = _model(story())

    by_buyer = ledger_document(model, buyer="alibaba")
    by_batch = ledger_document(model, batch="B1")

    assert by_buyer["selection"] == {"buyer": "alibaba"}
    assert {line["buyer_id"] for line in by_buyer["lines"]} == {"alibaba"}
    assert list(by_buyer["totals"]["buyers"]) == ["alibaba"]
    assert {line["batch_id"] for line in by_batch["lines"]} == {"B1"}
    assert list(by_batch["totals"]["batches"]) == ["B1"]
    both = ledger_document(model, at(600), buyer="bytedance", batch="B1")
    assert {(line["buyer_id"], line["batch_id"]) for line in both["lines"]} == {("bytedance", "B1")}


@pytest.mark.parametrize(("buyer", "batch", "names"), [("nobody", None, "bytedance"), (None, "B9", "B1, B2")])
def test_an_unknown_buyer_or_batch_is_refused_naming_those_there_are(
    buyer: str | None, batch: str | None, names: str
) -> None:
    model, _ = _model(story())

    with pytest.raises(ReplayError, match=names):
        ledger_document(model, buyer=buyer, batch=batch)


def test_supply_against_demand_rises_with_batches_and_orders_and_ends_at_the_totals_now() -> None:
    model, events = _model(story())

    document = supply_and_demand(model)

    points = document["points"]
    assert [point["at"] for point in points] == sorted(point["at"] for point in points)
    assert [p["manufactured"] for p in points][-1] == 900
    assert max(p["requested"] for p in points) == 1_600  # Baidu's order asks too, though never approved
    totals = fold_ledger(events).totals()
    assert document["now"]["allocated"] == sum(b["allocated"] for b in totals["buyers"].values())
    assert document["now"]["delivered"] == sum(b["delivered"] for b in totals["buyers"].values())
    assert all(p["allocated"] <= p["manufactured"] and p["shipped"] <= p["allocated"] for p in points)


def test_each_point_of_supply_against_demand_is_the_ledger_s_totals_at_that_moment() -> None:
    model, _ = _model(revoked_story())

    for point in supply_and_demand(model)["points"]:
        totals = ledger_document(model, datetime.fromisoformat(point["at"]))["totals"]
        buyers, batches = totals["buyers"].values(), totals["batches"].values()
        assert point["manufactured"] == sum(b["quantity"] for b in batches), point
        for figure in ("requested", "approved", "allocated", "shipped", "delivered"):
            assert point[figure] == sum(b[figure] for b in buyers), (figure, point)


def test_supply_against_demand_of_one_buyer_counts_its_orders_and_chips_only() -> None:
    model, _ = _model(story())

    alibaba = supply_and_demand(model, buyer="alibaba")["now"]

    assert alibaba["requested"] == 500
    assert alibaba["manufactured"] == 900
    assert alibaba["allocated"] == ledger_document(model, buyer="alibaba")["totals"]["buyers"]["alibaba"]["allocated"]


@pytest.mark.parametrize(
    ("text", "says"), [("yesterday", "not an ISO 8601 time"), ("2026-01-28T09:00:00", "no time zone")]
)
def test_as_of_must_be_an_iso_time_with_a_zone(text: str, says: str) -> None:
    with pytest.raises(UnknownError, match=says):
        parse_as_of(text)


def test_as_of_accepts_z_and_an_offset_whose_plus_became_a_space_in_a_query() -> None:
    assert parse_as_of("2026-01-28T09:00:00Z") == parse_as_of("2026-01-28T10:00:00 01:00")
    assert parse_as_of(None) is None and parse_as_of("") is None
