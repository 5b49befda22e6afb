"""A replay read by two processes on a real broker (services.replay.parallel: partition_bounds, forked readers
with their own librdkafka consumers, the folds merged) gives the ledger one process reading the same topics gives,
line for line and hash for hash, with the same counts."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaProducer

from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import kafka_python_options
from services.replay.bulk_read import read_topics
from services.replay.parallel import fold_in_parallel, folded
from services.replay.records import in_catalogue_order
from tests.unit.builders_replay import revoked_story, story

PARTITIONS = 3


def test_two_reading_processes_give_the_ledger_of_one(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    # Given the event topics of two worlds' logs, each on a topic of this test's own, written twice (a retry)
    ours = {
        topic: make_topic(topic.replace(".", "-"), partitions=PARTITIONS) for topic in in_catalogue_order(EVENT_TOPICS)
    }
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", **kafka_python_options())
    for world in (story(), revoked_story()):
        for record in [r for r in world.records(ours) if r.value is not None] * 2:
            producer.send(
                ours[record.topic], key=record.key, value=record.value, partition=record.partition % PARTITIONS
            )
    producer.flush()
    producer.close()
    topics = tuple(ours.values())

    # When it is read by two processes, and by one
    apart = fold_in_parallel(kafka_bootstrap, topics, None, jobs=2)
    fold, reading = folded(read_topics(kafka_bootstrap, topics), topics, f"kafka {kafka_bootstrap}", None)

    # Then both tell the same ledger and counts
    assert apart is not None, "the log was read by one process: nothing was compared"
    parallel_fold, parallel_reading, processes = apart
    assert processes == 2
    one, two = fold.ledger(), parallel_fold.ledger()
    assert two.ledger_hash == one.ledger_hash and list(two.lines) == list(one.lines) and len(one.lines) > 0
    counts = (reading.events, reading.duplicates, reading.undecodable, len(reading.seen), reading.ends)
    assert (
        parallel_reading.events,
        parallel_reading.duplicates,
        parallel_reading.undecodable,
        len(parallel_reading.seen),
        parallel_reading.ends,
    ) == counts
    # every event was written twice (and the two worlds share their first events): each counted once
    assert reading.duplicates >= reading.events > 0
