"""`h200 dead-letters`: the operator lists what the services refused, reads one dead letter whole, and re-drives
one once it decodes, under a new id caused by the original, sent once however often it is re-driven. No Kafka: a
World of real cores stands for the cluster (fake_cluster), with dead letters made as the services make them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from builders_replay import order, story
from fake_cluster import FakeCluster

from schemas.codec import ContractError, encode
from schemas.envelope import derive_id, order_id_for
from schemas.intake import OrderPlaced
from services.common.dead_letters import dead_letter
from services.common.records import Record
from services.ops import cli, dead_letter_commands
from services.ops.publish import envelope_for

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
LIMIT = 1_000_000
MALFORMED = ContractError("malformed_json", "not valid JSON: Expecting value: line 1 column 1 (char 0)")
FAILED = ContractError(
    "processing_failed", "RuntimeError: the quota store did not answer within 30 s, deciding tencent/TC-9"
)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster(story())
    monkeypatch.setattr(dead_letter_commands, "read_topics", fake.read_topics)
    monkeypatch.setattr(dead_letter_commands, "send_record", fake.send_record)
    return fake


def refused(
    cluster: FakeCluster,
    service: str,
    value: bytes | None,
    error: ContractError,
    *,
    source: tuple[str, int, int] = ("h200.intake.commands", 2, 17),
    key: bytes = b"tencent",
    shorten: bool = False,
) -> int:
    """A record `service` dead-lettered, on its dlq topic as the service would have sent it: its offset there."""
    record = Record(*source, key, value, (("traceparent", b"00-abc-01"),))
    letter = dead_letter(service, record, error, AT, LIMIT, shorten=shorten)
    return cluster.add_raw(letter.topic, letter.key, letter.value, letter.headers).offset


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["dead-letters", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def new_order() -> bytes:
    return encode(envelope_for(order("tencent", "TC-9", 100, minute=300), "upstream"))


# --- list ---------------------------------------------------------------------------------------------------


def test_list_shows_every_dead_letter_with_its_source_and_counts_per_service_and_code(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(cluster, "intake", b"{not json", MALFORMED)
    refused(cluster, "intake", b"", MALFORMED, source=("h200.intake.commands", 0, 3))
    refused(cluster, "fulfilment", new_order(), FAILED, source=("h200.fulfilment.commands", 4, 9))

    code, out, _ = run(capsys, "list")

    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["service", "offset", "code", "source", "at", "size", "truncated", "error"]
    assert lines[1].split()[:7] == [
        "intake",
        "0",
        "malformed_json",
        "h200.intake.commands[2]@17",
        AT.isoformat(),
        "9",
        "no",
    ]
    assert lines[1].endswith("not valid JSON: Expecting value: line 1 column 1 (char 0)")
    assert "h200.fulfilment.commands[4]@9" in lines[3]
    assert lines[4:] == ["3 dead letters", "  fulfilment: processing_failed 1", "  intake: malformed_json 2"]


def test_list_by_service_and_code_as_json_holds_only_those(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(cluster, "intake", b"{not json", MALFORMED)
    refused(cluster, "intake", new_order(), FAILED)
    refused(cluster, "approval", b"{", MALFORMED, source=("h200.approval.inbox", 1, 5))

    code, out, _ = run(capsys, "list", "--service", "intake", "--code", "processing_failed", "--format", "json")

    listed = json.loads(out)
    assert code == 0
    assert listed["counts"] == {"intake": {"processing_failed": 1}}
    [row] = listed["dead_letters"]
    assert row["offset"] == 1 and row["source"] == "h200.intake.commands[2]@17" and row["truncated"] is False
    assert row["size"] == len(new_order())
    assert row["error"].endswith("...") and len(row["error"]) == 60


def test_list_of_a_cluster_that_refused_nothing_says_so(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list")

    assert (code, out.splitlines()[1:]) == (0, ["0 dead letters (nothing refused, or nothing matches)"])


# --- show ---------------------------------------------------------------------------------------------------


def test_show_prints_every_dlq_header_the_value_as_text_and_the_envelope_it_decodes_to_now(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    value = new_order()
    offset = refused(cluster, "intake", value, FAILED)

    code, out, _ = run(capsys, "show", "intake", str(offset))

    assert code == 0
    for name in ("error_code", "error", "source_topic", "source_partition", "source_offset", "service", "at"):
        assert f"  dlq.{name}: " in out
    assert "  dlq.original_sha256: " in out and "  dlq.truncated: false" in out
    assert "  (original header) traceparent: 00-abc-01" in out
    assert f"value ({len(value)} bytes, UTF-8):\n{value.decode()}\n" in out
    assert f"decodes now: yes, SubmitOrder v1 id {json.loads(value)['id']}" in out


def test_show_of_bytes_that_are_not_utf8_prints_hex_and_why_they_do_not_decode(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", b"\xff\xfe{", MALFORMED)

    code, out, _ = run(capsys, "show", "intake", str(offset))

    assert code == 0
    assert "value (3 bytes, not UTF-8; hex):\nff fe 7b\n" in out
    assert "decodes now: no [malformed_json] not valid UTF-8" in out


def test_show_of_a_truncated_dead_letter_names_the_original_length_and_sha256(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", b'{"id": 1}', MALFORMED, shorten=True)

    _, out, _ = run(capsys, "show", "intake", str(offset))

    sha256 = next(line.split(": ")[1] for line in out.splitlines() if "dlq.original_sha256" in line)
    assert f"truncated: the original was 9 bytes, sha256 {sha256}; the whole record is at " in out


def test_show_of_an_offset_the_topic_does_not_hold_exits_2_naming_the_offsets_it_holds(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(cluster, "intake", b"{", MALFORMED)

    code, _, err = run(capsys, "show", "intake", "7")

    assert code == 2
    assert "h200.dlq.intake has no record at offset 7 (offsets 0 to 0)" in err


# --- redrive ------------------------------------------------------------------------------------------------


def test_redrive_sends_the_envelope_under_a_new_id_caused_by_the_original_and_the_service_decides_it(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    value = new_order()
    original = json.loads(value)
    offset = refused(cluster, "intake", value, FAILED)

    code, out, _ = run(capsys, "redrive", "intake", str(offset))

    new_id = derive_id("redrive", original["id"], "intake", offset)
    [sent] = cluster.resent
    assert code == 0
    assert (sent.topic, sent.partition, sent.key) == ("h200.intake.commands", 2, b"tencent")
    assert (str(sent.envelope.id), str(sent.envelope.causation_id)) == (str(new_id), original["id"])
    assert str(sent.envelope.correlation_id) == original["correlation_id"]
    assert json.loads(sent.value)["payload"] == original["payload"]
    assert out == (
        f"sent h200.dlq.intake@{offset} to h200.intake.commands[2]@0: SubmitOrder as id {new_id} "
        f"(caused by the original {original['id']})\n"
    )
    [placed] = [
        e
        for e in cluster.events("h200.orders")
        if isinstance(e.payload, OrderPlaced) and e.payload.order_id == order_id_for("tencent", "TC-9")
    ]
    assert placed.causation_id == new_id


def test_redrive_of_a_dead_letter_re_driven_before_sends_nothing_and_says_where_the_copy_is(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", new_order(), FAILED)
    run(capsys, "redrive", "intake", str(offset))

    code, out, _ = run(capsys, "redrive", "intake", str(offset))

    assert (code, len(cluster.resent)) == (0, 1)
    assert out.startswith(f"nothing sent: h200.dlq.intake@{offset} was re-driven before: SubmitOrder as id ")
    assert "is at h200.intake.commands[2]@0; readers apply an id once" in out


def test_redrive_dry_run_says_what_would_be_sent_and_sends_nothing(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", new_order(), FAILED)

    code, out, _ = run(capsys, "redrive", "intake", str(offset), "--dry-run")

    assert (code, cluster.resent) == (0, [])
    assert out.startswith(f"would send h200.dlq.intake@{offset} to h200.intake.commands partition 2 (key tencent): ")
    assert out.endswith("; nothing sent\n")


def test_redrive_to_another_topic_uses_that_topic_s_key(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", new_order(), FAILED, source=("h200.policy", 0, 4), key=b"wrong")

    code, out, _ = run(capsys, "redrive", "intake", str(offset), "--to", "h200.intake.commands")

    [sent] = cluster.resent
    assert code == 0
    assert (sent.topic, sent.partition, sent.key) == ("h200.intake.commands", None, b"tencent")
    assert out.startswith(f"sent h200.dlq.intake@{offset} to h200.intake.commands[")


def test_redrive_to_a_topic_that_does_not_carry_the_message_is_refused(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", new_order(), FAILED, source=("h200.policy", 0, 4))

    code, out, _ = run(capsys, "redrive", "intake", str(offset))

    assert (code, cluster.resent) == (1, [])
    assert "h200.policy does not carry SubmitOrder: give --to the topic that does" in out


def test_redrive_of_a_value_that_does_not_decode_is_refused_with_the_reason(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = refused(cluster, "intake", b"{not json", MALFORMED)

    code, out, _ = run(capsys, "redrive", "intake", str(offset))

    assert (code, cluster.resent) == (1, [])
    assert out.startswith(f"refused: h200.dlq.intake@{offset} is not re-sent: the value does not decode as an ")
    assert "[malformed_json] not valid JSON" in out


def test_redrive_of_a_truncated_dead_letter_is_refused_naming_the_original_s_sha256(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    value = new_order()
    offset = refused(cluster, "intake", value, FAILED, shorten=True)

    code, out, _ = run(capsys, "redrive", "intake", str(offset))

    assert (code, cluster.resent) == (1, [])
    assert "(dlq.truncated=true): the original must be re-sent by its producer" in out
    assert f"sha256 {hashlib.sha256(value).hexdigest()} at h200.intake.commands[2]@17" in out
