"""Where each message is first published and which payload field is its record key."""

from __future__ import annotations

from schemas.base import Message
from schemas.topics import CATALOGUE, Topic

HOME: dict[str, Topic] = {}
for _topic in (topic for topic in CATALOGUE if not topic.carries_copies):
    for _message in _topic.messages:
        HOME.setdefault(_message.TYPE, _topic)


def home_topic(message: Message | type[Message]) -> Topic:
    """The topic a message type is published to by its producer (a re-keyed copy may travel elsewhere)."""
    try:
        return HOME[message.TYPE]
    except KeyError:
        raise LookupError(f"{message.TYPE} is carried by no topic of the catalogue") from None


def record_key(payload: Message, topic: Topic | None = None) -> str:
    """The Kafka key of a payload on a topic: the value of the field the catalogue names as its key."""
    topic = topic or home_topic(payload)
    value = getattr(payload, topic.key, None)
    if value is None and explicit_partition(payload) is not None:
        # Written to a partition of its own choosing: the key only says who wrote it.
        return f"{payload.TYPE}/{getattr(payload, 'source_partition', '')}"
    if value is None:
        raise LookupError(f"{payload.TYPE} has no field {topic.key!r}, the key of topic {topic.name}")
    return str(value)


def explicit_partition(payload: Message) -> int | None:
    """The partition a message must be written to whatever its key, or None for the key's partition: a marker of
    approval goes to the lane it names (every lane gets its own copy)."""
    lane = getattr(payload, "lane", None)
    return lane if isinstance(lane, int) else None


def copy_partitions(payload: Message, inbox: Topic) -> range | tuple[int, ...] | None:
    """The partitions of `inbox` a router writes its copy of `payload` to: every partition for a message the inbox
    broadcasts, but only the lane's own for a lane-only marker of approval (lane L feeds inbox partition L alone,
    schemas.clock.ApprovalsPassed); None for the partition of the inbox's key."""
    if not isinstance(payload, inbox.broadcast):
        return None
    lane = getattr(payload, "lane", None)
    if getattr(payload, "lane_only", False) and isinstance(lane, int):
        return (lane,)
    return range(inbox.partitions)
