"""The AsyncAPI document is self-contained and says what tools need: formats, correlation, dead-letter headers."""

from __future__ import annotations

import json
import re
from typing import Any

from schemas.generate import ASYNCAPI, SCHEMA_FORMAT, asyncapi_document
from schemas.registry import ALL_MESSAGES
from schemas.topics import CATALOGUE, DEAD_LETTER_HEADERS


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_is_inside_the_document_and_resolves() -> None:
    document = asyncapi_document()
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))

    assert refs, "the document uses references"
    assert [ref for ref in refs if not ref.startswith("#/")] == []
    for ref in refs:
        _resolve(document, ref)  # raises KeyError for a dangling one


def test_every_message_names_its_schema_format_and_correlation() -> None:
    messages = asyncapi_document()["components"]["messages"]

    for message in ALL_MESSAGES:
        entry = messages[message.schema_name()]
        assert entry["payload"]["schemaFormat"] == SCHEMA_FORMAT
        assert entry["correlationId"]["location"] == "$message.payload#/correlation_id"


def test_dead_letter_channels_carry_a_message_with_the_dlq_headers() -> None:
    document = asyncapi_document()
    for topic in (t for t in CATALOGUE if t.dead_letter):
        [ref] = document["channels"][topic.name.replace(".", "_")]["messages"].values()
        message = _resolve(document, ref["$ref"])
        assert set(message["headers"]["properties"]) == set(DEAD_LETTER_HEADERS)


def test_the_committed_document_is_the_generated_one() -> None:
    assert json.loads(ASYNCAPI.read_text()) == json.loads(json.dumps(asyncapi_document(), default=str))
