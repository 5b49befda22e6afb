"""The services read exactly the topics the catalogue says they consume: one source for settle, docs and code."""

from __future__ import annotations

import importlib

import pytest

from schemas.topics import BY_NAME, inputs_of
from services.ops.supervisor import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reads_its_inbox_and_route_sources_as_the_catalogue_lists_them(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app")
    read = {app.INBOX, *(route.source for route in app.ROUTES)}
    assert read == set(inputs_of(service))


@pytest.mark.parametrize("service", SERVICES)
def test_every_routed_message_is_carried_by_its_source_and_its_inbox(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app")
    for route in app.ROUTES:
        for message in route.types:
            assert message in BY_NAME[route.source].messages, f"{message.TYPE} never travels on {route.source}"
            assert message in BY_NAME[app.INBOX].messages, f"{message.TYPE} is not carried by {app.INBOX}"
