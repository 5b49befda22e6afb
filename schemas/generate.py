"""Writes the JSON Schema of every message and the AsyncAPI 3 document of the topics; `--check` compares.

python -m schemas.generate          # rewrite schemas/json/*.schema.json and schemas/asyncapi.json
python -m schemas.generate --check  # exit 1 and name the files that drifted from the models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.principals import writers
from schemas.registry import ALL_MESSAGES, CURRENT
from schemas.samples import sample_envelopes
from schemas.topics import (
    CATALOGUE,
    COMMAND_HEADERS,
    DEAD_LETTER_HEADERS,
    INTAKE_COMMANDS,
    Topic,
    outcome_topic,
    outcome_topic_of,
    submission_topic,
)

HERE = Path(__file__).parent
JSON_DIR = HERE / "json"
ASYNCAPI = HERE / "asyncapi.json"
CONTRACT_VERSION = "1.0.0"


def message_schema(message: type[Message]) -> dict[str, Any]:
    """The JSON Schema of a whole record value: the envelope with this payload, type and version fixed."""
    schema = Envelope[message].model_json_schema(mode="validation")  # type: ignore[valid-type]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:h200-orderbook:schema:{message.schema_name()}"
    schema["title"] = message.schema_name()
    schema["description"] = (message.__doc__ or message.TYPE).strip().splitlines()[0]
    schema["properties"]["type"] = {"const": message.TYPE, "type": "string"}
    schema["properties"]["version"] = {"const": message.VERSION, "type": "integer"}
    if message is not CURRENT[message.TYPE]:
        schema["deprecated"] = True
    return schema


SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
"""The payload schemas are JSON Schema 2020-12 (pydantic's), not AsyncAPI's default format: say so per message."""

DEAD_LETTER = "DeadLetter"


def _local_refs(schema: Any, base: str) -> Any:
    """The schema with its `#/$defs/...` references made absolute within the AsyncAPI document, so that it is
    self-contained: no relative file reference for a tool to resolve against its working directory."""
    if isinstance(schema, dict):
        return {
            key: (
                base + value[1:]
                if key == "$ref" and isinstance(value, str) and value.startswith("#/")
                else _local_refs(value, base)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_local_refs(item, base) for item in schema]
    return schema


def dead_letter_message() -> dict[str, Any]:
    """A dead letter: the refused record's original bytes (or their first 64 KiB) with the dlq.* headers."""
    return {
        "name": DEAD_LETTER,
        "title": DEAD_LETTER,
        "summary": "Input a service could not accept, with why and where it came from",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": sorted(DEAD_LETTER_HEADERS),
            "properties": {name: {"type": "string", "description": text} for name, text in DEAD_LETTER_HEADERS.items()},
        },
        "payload": {
            "description": "the original record value, byte for byte (cut to its first 64 KiB when "
            "dlq.truncated is true); not necessarily JSON"
        },
        "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": "0.5.0"}},
    }


BUYER_PARAMETER = "{buyer_id}"
PER_BUYER: tuple[Topic, ...] = (submission_topic(BUYER_PARAMETER), outcome_topic(BUYER_PARAMETER))
"""A buyer system's own topics, one pair per buyer of H200_BUYER_SYSTEMS: channels with a buyer_id parameter."""
BUYER_SYSTEM = "upstream_buyer"
"""The operations of principal upstream-<buyer>, on its own pair of channels."""


def _channel_id(topic: Topic) -> str:
    return topic.name.replace(".", "_").replace(BUYER_PARAMETER, "buyer")


def _message_names(topic: Topic) -> list[str]:
    return [DEAD_LETTER] if topic.dead_letter else [m.schema_name() for m in topic.messages]


def _reply(topic: Topic) -> dict[str, Any]:
    """What a submitter receives for each record it sends to a submission topic: one answer on its outcome topic."""
    if topic.messages != INTAKE_COMMANDS:
        return {}
    answers = next(t for t in (*CATALOGUE, *PER_BUYER) if t.name == outcome_topic_of(topic.name))
    channel = _channel_id(answers)
    return {
        "reply": {
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in _message_names(answers)],
        }
    }


def _operations(topic: Topic) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    refs = [{"$ref": f"#/channels/{_channel_id(topic)}/messages/{name}"} for name in _message_names(topic)]
    per_buyer = topic in PER_BUYER
    # Besides the catalogue's producers, every principal the ACLs let write the topic (the API, the authority); a
    # buyer's own topics are written by its system alone (schemas.principals.buyer_grants).
    others = () if per_buyer else sorted(writers(topic) - set(topic.producers))
    senders = (*topic.producers, *others)
    for action, parties in (("send", senders), ("receive", topic.consumers)):
        for party in parties:
            outside = party in ("upstream", "api")
            who = BUYER_SYSTEM if per_buyer and party == "upstream" else party
            operations[f"{who}_{action}_{_channel_id(topic)}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{_channel_id(topic)}"},
                "summary": f"{'upstream-<buyer>' if who == BUYER_SYSTEM else party} "
                f"{'publishes to' if action == 'send' else 'consumes'} {topic.name}",
                **({"messages": refs} if refs else {}),
                **(_reply(topic) if action == "send" and outside else {}),
            }
    return operations


def _channel(topic: Topic) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": topic.name,
        "description": topic.description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in _message_names(topic)},
        "bindings": {
            "kafka": {
                **({} if topic in PER_BUYER else {"topic": topic.name}),
                "partitions": topic.partitions,
                "replicas": 1,
                "topicConfiguration": {
                    "cleanup.policy": [topic.config["cleanup.policy"]],
                    "retention.ms": int(topic.config["retention.ms"]),
                    "retention.bytes": int(topic.config["retention.bytes"]),
                },
                "bindingVersion": "0.5.0",
            }
        },
        "x-key": topic.key,
    }
    if topic in PER_BUYER:
        channel["parameters"] = {
            "buyer_id": {"description": "a buyer system listed in H200_BUYER_SYSTEMS (its principal: upstream-<buyer>)"}
        }
    if topic.dead_letter:
        channel["x-dead-letter-headers"] = DEAD_LETTER_HEADERS
    return channel


def _headers(message: type[Message]) -> dict[str, Any]:
    """The record headers of a message: an intake command's optional ones; none for every other message."""
    if message in INTAKE_COMMANDS:
        return {
            "type": "object",
            "properties": {name: {"type": "string", "description": text} for name, text in COMMAND_HEADERS.items()},
        }
    return {"type": "object", "description": "the services write no header on this message and read none"}


def asyncapi_document() -> dict[str, Any]:
    examples = {e.type: json.loads(e.model_dump_json()) for e in sample_envelopes()}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in (*CATALOGUE, *PER_BUYER):
        channels[_channel_id(topic)] = _channel(topic)
        operations.update(_operations(topic))
    messages = {
        m.schema_name(): {
            "name": m.TYPE,
            "title": m.schema_name(),
            "summary": (m.__doc__ or m.TYPE).strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": f"#/components/schemas/{m.schema_name()}"}},
            "correlationId": {
                "description": "the id of the first message of the business flow: every event caused by this "
                "message carries the same correlation_id, and its causation_id names this message's id",
                "location": "$message.payload#/correlation_id",
            },
            "headers": _headers(m),
            "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": "0.5.0"}},
            "x-kind": m.KIND,
            **({"examples": [{"payload": examples[m.TYPE]}]} if m is CURRENT[m.TYPE] else {}),
        }
        for m in ALL_MESSAGES
    }
    messages[DEAD_LETTER] = dead_letter_message()
    schemas = {
        m.schema_name(): _local_refs(message_schema(m), f"#/components/schemas/{m.schema_name()}") for m in ALL_MESSAGES
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "h200-orderbook",
            "version": CONTRACT_VERSION,
            "description": "Purchase orders for NVIDIA H200 chips through US export and Chinese import approval, "
            "allocation of manufactured batches and fulfilment. Every record value is a JSON envelope "
            "(id, type, version, occurred_at, producer, key, correlation_id, causation_id, payload).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "single-node Apache Kafka 4.x"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def rendered() -> dict[Path, str]:
    """Every generated file and its exact text."""
    files = {
        JSON_DIR / f"{m.schema_name()}.schema.json": json.dumps(message_schema(m), indent=2, sort_keys=True) + "\n"
        for m in ALL_MESSAGES
    }
    files[ASYNCAPI] = json.dumps(asyncapi_document(), indent=2, sort_keys=True, default=str) + "\n"
    return files


def drifted() -> list[str]:
    """Files whose committed text differs from what the models generate, plus stale extra schema files."""
    files = rendered()
    problems = [str(p.relative_to(HERE.parent)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [p for p in JSON_DIR.glob("*.schema.json") if p not in files] if JSON_DIR.exists() else []
    return problems + [f"{p.relative_to(HERE.parent)} (no model generates it)" for p in extra]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if any file drifted")
    args = parser.parse_args(argv)
    if args.check:
        problems = drifted()
        for problem in problems:
            print(f"drifted: {problem}", file=sys.stderr)
        if problems:
            print("run `make schemas` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    JSON_DIR.mkdir(exist_ok=True)
    for stale in JSON_DIR.glob("*.schema.json"):
        stale.unlink()
    for path, text in rendered().items():
        path.write_text(text)
    print(f"wrote {len(ALL_MESSAGES)} JSON Schemas to {JSON_DIR} and {ASYNCAPI}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
