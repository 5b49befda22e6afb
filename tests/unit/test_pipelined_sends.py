"""A decision's events are sent together and awaited together; a failure sends that record and every later one
again, in order, and a record the cluster will never take is answered with why, not raised."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import errors as kafka

from services.common.dead_letters import RecordRefusedError
from services.common.publishing import Outgoing, Publisher
from services.common.retry import Backoff

QUICK = Backoff(first_s=0.001, max_s=0.004, attempt_timeout_s=5.0)


class Broker:
    """A faust app's producer: every send is logged in order; the first attempt of a value named in `fail_once`
    fails when awaited (the producer gave up), the values in `refuse` always do."""

    def __init__(self, fail_once: set[bytes] | None = None, refuse: set[bytes] | None = None) -> None:
        self.sent: list[bytes] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_once = set(fail_once or ())
        self.refuse = set(refuse or ())
        self.should_stop = False

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    @property
    def producer(self) -> Any:
        broker = self

        class Producer:
            """faust's aiokafka driver: send(topic, key, value, partition, timestamp, headers)."""

            async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> asyncio.Future[str]:
                broker.sent.append(value)
                broker.in_flight += 1
                broker.most_in_flight = max(broker.most_in_flight, broker.in_flight)
                future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

                def settle() -> None:
                    broker.in_flight -= 1
                    if value in broker.refuse:
                        future.set_exception(kafka.MessageSizeTooLargeError())
                    elif value in broker.fail_once:
                        broker.fail_once.discard(value)
                        future.set_exception(kafka.KafkaTimeoutError())
                    else:
                        future.set_result(f"acked {value.decode()}")

                asyncio.get_running_loop().call_soon(settle)
                return future

        return Producer()


def records(*values: str) -> list[Outgoing]:
    return [("h200.allocations", b"pool", value.encode(), None, None) for value in values]


def send_all(broker: Broker, outgoing: list[Outgoing]) -> list[object]:
    return asyncio.run(Publisher(broker, QUICK).send_all(outgoing))


def test_every_event_of_a_decision_is_in_flight_at_once() -> None:
    broker = Broker()
    assert send_all(broker, records("a", "b", "c")) == ["acked a", "acked b", "acked c"]
    assert broker.sent == [b"a", b"b", b"c"]
    assert broker.most_in_flight == 3  # not one round trip per event


def test_a_failed_send_is_sent_again_with_every_later_one_in_order() -> None:
    broker = Broker(fail_once={b"b"})
    assert send_all(broker, records("a", "b", "c")) == ["acked a", "acked b", "acked c"]
    # b and c again after the first round, so that c never stands alone before b
    assert broker.sent == [b"a", b"b", b"c", b"b", b"c"]


def test_a_record_the_cluster_will_never_take_is_answered_with_why() -> None:
    broker = Broker(refuse={b"b"})
    first, second, third = send_all(broker, records("a", "b", "c"))
    assert (first, third) == ("acked a", "acked c")
    assert isinstance(second, RecordRefusedError) and "h200.allocations" in str(second)
