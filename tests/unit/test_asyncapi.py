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


OUTCOMES = {"OrderPlaced.v1", "OrderSubmissionRejected.v1", "SubmissionUnchanged.v1", "SubmissionMalformed.v1"}


def test_each_submitter_receives_the_outcomes_of_its_channel_with_their_correlation_id() -> None:
    document = asyncapi_document()
    operations = document["operations"]
    for receive, channel in (
        ("upstream_receive_h200_outcomes", "h200_outcomes"),
        ("api_receive_h200_outcomes", "h200_outcomes"),
        ("upstream_buyer_receive_h200_outcomes_buyer", "h200_outcomes_buyer"),
    ):
        operation = operations[receive]
        assert (operation["action"], operation["channel"]) == ("receive", {"$ref": f"#/channels/{channel}"})
        messages = [_resolve(document, _resolve(document, ref["$ref"])["$ref"]) for ref in operation["messages"]]
        assert {message["title"] for message in messages} >= OUTCOMES
        assert all(m["correlationId"]["location"] == "$message.payload#/correlation_id" for m in messages)


def test_every_send_to_a_submission_topic_is_answered_on_its_outcome_channel() -> None:
    operations = asyncapi_document()["operations"]
    for send, answers in (
        ("upstream_send_h200_intake_commands", "h200_outcomes"),
        ("api_send_h200_intake_commands", "h200_outcomes"),
        ("upstream_buyer_send_h200_submissions_buyer", "h200_outcomes_buyer"),
    ):
        reply = operations[send]["reply"]
        assert reply["channel"] == {"$ref": f"#/channels/{answers}"}
        assert {ref["$ref"].rsplit("/", 1)[1] for ref in reply["messages"]} >= OUTCOMES
    assert "api_send_h200_submissions_buyer" not in operations  # a buyer's topic is its own system's alone


def test_a_buyers_own_channels_take_the_buyer_as_a_parameter() -> None:
    channels = asyncapi_document()["channels"]
    for channel, address in (
        ("h200_submissions_buyer", "h200.submissions.{buyer_id}"),
        ("h200_outcomes_buyer", "h200.outcomes.{buyer_id}"),
    ):
        assert channels[channel]["address"] == address
        assert set(channels[channel]["parameters"]) == {"buyer_id"}


def test_every_message_declares_its_headers_and_a_command_the_ones_intake_reads() -> None:
    messages = asyncapi_document()["components"]["messages"]
    assert all(messages[m.schema_name()]["headers"]["type"] == "object" for m in ALL_MESSAGES)
    assert set(messages["SubmitOrder.v1"]["headers"]["properties"]) == {"correlation_id", "h200.source_topic"}
