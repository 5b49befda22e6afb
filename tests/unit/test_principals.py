"""The principals' ACLs as the catalogue implies them: each service its inputs and outputs, outsiders their kind."""

from __future__ import annotations

import pytest

from schemas.principals import PRINCIPALS, READS_BACK, SERVICE_PRINCIPALS, grants, grants_of
from schemas.topics import BY_NAME, CATALOGUE, JOURNALS, MANAGED, inputs_of, journal_topic


def written_by(principal: str) -> set[str]:
    return {g.resource for g in grants_of(principal) if g.operation == "WRITE"}


def read_by(principal: str) -> set[str]:
    return {g.resource for g in grants_of(principal) if g.operation == "READ" and g.resource_type == "topic"}


@pytest.mark.parametrize("service", ["intake", "approval", "allocation", "fulfilment", "projector"])
def test_a_service_reads_exactly_its_inputs_and_writes_exactly_its_outputs(service: str) -> None:
    own_journal = {t.name for t in JOURNALS if service in t.producers}
    assert read_by(service) == set(inputs_of(service)) | set(READS_BACK.get(service, ())) | own_journal
    assert written_by(service) == {t.name for t in CATALOGUE if service in t.producers} | own_journal


@pytest.mark.parametrize("service", ["intake", "approval", "allocation", "fulfilment"])
def test_a_services_journal_is_written_and_read_by_that_service_alone_and_read_by_the_auditor(service: str) -> None:
    name = journal_topic(service)
    assert {g.principal for g in grants() if g.resource == name and g.operation == "WRITE"} == {service}
    assert {g.principal for g in grants() if g.resource == name and g.operation == "READ"} == {service, "auditor"}


@pytest.mark.parametrize("service", ["intake", "approval", "allocation", "fulfilment"])
def test_a_faust_service_uses_only_its_own_consumer_group(service: str) -> None:
    assert {g.resource for g in grants_of(service) if g.resource_type == "group"} == {f"h200-{service}"}


def test_only_the_authority_writes_policy() -> None:
    assert {g.principal for g in grants() if g.resource == "h200.policy" and g.operation == "WRITE"} == {"authority"}


def test_upstream_systems_write_only_submissions_and_read_only_their_outcomes() -> None:
    assert written_by("upstream") == {"h200.intake.commands"}
    assert read_by("upstream") == {"h200.outcomes"}


def test_a_buyer_system_writes_its_submissions_and_reads_its_own_outcomes_only() -> None:
    mine = grants_of("upstream-tencent", ("tencent", "bytedance"))
    assert {(g.resource, g.operation) for g in mine} == {
        ("h200.submissions.tencent", "WRITE"),
        ("h200.outcomes.tencent", "READ"),
    }
    intake = {(g.resource, g.operation) for g in grants_of("intake", ("tencent",))}
    assert {("h200.submissions.tencent", "READ"), ("h200.outcomes.tencent", "WRITE")} <= intake
    assert ("h200.outcomes.tencent", "READ") in {(g.resource, g.operation) for g in grants_of("auditor", ("tencent",))}


def test_the_api_reads_the_outcomes_of_what_it_submits() -> None:
    assert "h200.outcomes" in read_by("api")
    assert not {name for name in read_by("api") if name.startswith("h200.outcomes.")}  # no buyer's own answers


def test_only_approval_writes_approvals_and_only_allocation_the_ledger() -> None:
    writers = {
        name: {g.principal for g in grants() if g.resource == name and g.operation == "WRITE"} for name in BY_NAME
    }
    assert writers["h200.approvals"] == {"approval"}
    assert writers["h200.allocations"] == {"allocation"}
    assert writers["h200.allocation.inbox"] == {"allocation"}


def test_the_auditor_reads_everything_and_writes_nothing() -> None:
    assert read_by("auditor") == {t.name for t in MANAGED}
    assert written_by("auditor") == set()


def test_every_topic_has_a_writer_and_no_grant_names_an_unknown_topic_or_principal() -> None:
    assert all(any(g.resource == t.name and g.operation == "WRITE" for g in grants()) for t in MANAGED)
    topics = {g.resource for g in grants() if g.resource_type == "topic"}
    assert topics <= {t.name for t in MANAGED}
    assert {g.principal for g in grants()} <= set(PRINCIPALS)
    assert set(SERVICE_PRINCIPALS) <= set(PRINCIPALS)


def test_the_projector_reads_every_services_dead_letters_it_counts() -> None:
    from services.projector.app import DEAD_LETTER_TOPICS

    assert set(DEAD_LETTER_TOPICS) <= read_by("projector")


def test_the_projector_reports_its_positions_to_its_own_group_alone() -> None:
    assert {g.resource for g in grants_of("projector") if g.resource_type == "group"} == {"h200-projector"}
