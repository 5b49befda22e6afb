"""A dead letter always fits in one record of the cluster: whole when it can be, else its head with the
original's length and SHA-256; and a refusal never stalls the worker."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from schemas.codec import ContractError
from schemas.topics import DEAD_LETTER_HEADERS
from services.common.dead_letters import (
    VALUE_HEAD,
    DeadLetter,
    DeadLetters,
    RecordRefusedError,
    dead_letter,
    record_size,
)
from services.common.records import Record

Headers = tuple[tuple[str, bytes], ...]
AT = datetime(2026, 3, 1, tzinfo=UTC)
LIMIT = 1_000_000
INVALID = ContractError("malformed_json", "not valid JSON: Expecting value: line 1 column 1 (char 0)")


def record(
    value: bytes | None, key: bytes | None = b"bytedance", headers: tuple[tuple[str, bytes], ...] = ()
) -> Record:
    return Record("h200.intake.commands", 3, 41, key, value, headers)


def headers_of(letter: DeadLetter) -> dict[str, str]:
    return {name: data.decode() for name, data in letter.headers}


def test_a_small_record_is_dead_lettered_whole_with_every_documented_header() -> None:
    letter = dead_letter("intake", record(b"{oops", headers=(("trace", b"1"),)), INVALID, AT, LIMIT)
    found = headers_of(letter)
    assert letter.value == b"{oops" and letter.key == b"bytedance" and not letter.truncated
    assert set(DEAD_LETTER_HEADERS) <= set(found)
    assert found["dlq.truncated"] == "false"
    assert found["dlq.original_length"] == "5"
    assert found["dlq.original_sha256"] == hashlib.sha256(b"{oops").hexdigest()
    assert (found["dlq.source_topic"], found["dlq.source_partition"], found["dlq.source_offset"]) == (
        "h200.intake.commands",
        "3",
        "41",
    )
    assert found["trace"] == "1"


def test_a_record_the_broker_took_but_that_no_longer_fits_is_dead_lettered_as_its_head() -> None:
    value = b"x" * 1_010_000
    letter = dead_letter("intake", record(value), INVALID, AT, LIMIT)
    found = headers_of(letter)
    assert letter.truncated and letter.value == value[:VALUE_HEAD]
    assert found["dlq.truncated"] == "true"
    assert found["dlq.original_length"] == "1010000"
    assert found["dlq.original_sha256"] == hashlib.sha256(value).hexdigest()
    assert found["dlq.error"] == INVALID.detail and found["dlq.error_code"] == "malformed_json"
    assert letter.size <= LIMIT


def test_the_head_shrinks_to_what_a_small_limit_leaves() -> None:
    letter = dead_letter("intake", record(b"x" * 100_000), INVALID, AT, 50_000)
    assert letter.truncated and 40_000 < len(letter.value or b"") < 50_000
    assert letter.size <= 50_000


def test_huge_own_headers_and_key_are_dropped_or_cut_to_fit() -> None:
    bulky = (("trace", b"t" * 600_000), ("more", b"m" * 600_000))
    letter = dead_letter("intake", record(b"{}", key=b"k" * 900_000, headers=bulky), INVALID, AT, LIMIT)
    assert letter.truncated and letter.size <= LIMIT
    assert "trace" not in headers_of(letter) and len(letter.key or b"") == 1024


def test_our_size_estimate_is_never_below_the_producers_own() -> None:
    for key, value, headers in [
        (None, None, []),
        (b"k", b"v" * 70_000, [("dlq.error", b"e" * 4000)]),
        (b"k" * 300, b"v" * 1_000_000, [(f"h{i}", b"x" * 20) for i in range(50)]),
    ]:
        assert record_size(key, value, headers) >= DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


def test_an_error_quoting_text_that_is_not_utf8_still_makes_headers() -> None:
    letter = dead_letter("intake", record(b"{}"), ContractError("invalid_payload", "bad \udc80 text"), AT, LIMIT)
    assert b"\\udc80" in dict(letter.headers)["dlq.error"]


def test_a_dead_letter_refused_whole_is_sent_shortened_and_one_refused_twice_is_given_up() -> None:
    sent: list[DeadLetter] = []

    async def cluster_taking(limit: int, letter: DeadLetter) -> None:
        if letter.size > limit:
            raise RecordRefusedError(letter.topic, "MessageSizeTooLargeError")
        sent.append(letter)

    # The topic's limit is below what the service was told: the whole letter is refused, the short one taken
    letters = DeadLetters("intake", lambda letter: cluster_taking(80_000, letter), max_bytes=LIMIT)
    asyncio.run(letters.reject(record(b"x" * 200_000), INVALID, AT))
    assert [letter.truncated for letter in sent] == [True] and letters.counts["malformed_json"] == 1

    # Even the short form is refused: logged and counted as unsent, and the worker goes on
    stingy = DeadLetters("intake", lambda letter: cluster_taking(1_000, letter), max_bytes=LIMIT)
    asyncio.run(stingy.reject(record(b"x" * 200_000), INVALID, AT))
    assert stingy.unsent == 1 and not stingy.counts
