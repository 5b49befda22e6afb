"""Replication of the catalogue comes from the settings: created with it, drift in it reported or restored."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from kafka.errors import InvalidReplicationFactorError
from pydantic import ValidationError

from schemas.topics import CATALOGUE, Topic
from services.common.settings import ClusterSettings
from services.ops.topics import Replication, ensure_topics


class FakeAdmin:
    """The part of KafkaAdminClient that ensure_topics uses, over a cluster of `brokers` brokers."""

    def __init__(self, brokers: int = 3, min_insync_default: str = "1") -> None:
        self.brokers = brokers
        self.min_insync_default = min_insync_default
        self.topics: dict[str, dict[str, Any]] = {}

    def list_topics(self) -> list[str]:
        return list(self.topics)

    def create_topics(self, new_topics: dict[str, dict[str, Any]], **_: Any) -> None:
        for name, spec in new_topics.items():
            if spec["replication_factor"] > self.brokers:
                raise InvalidReplicationFactorError(f"{spec['replication_factor']} > {self.brokers} brokers")
            self.topics[name] = {
                "partitions": spec["num_partitions"],
                "replicas": spec["replication_factor"],
                "configs": dict(spec["configs"]),
            }

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "error_code": 0,
                "partitions": [
                    {"partition_index": i, "replica_nodes": list(range(self.topics[name]["replicas"]))}
                    for i in range(self.topics[name]["partitions"])
                ],
            }
            for name in names
        ]

    def describe_configs(self, resources: list[Any], config_filter: str = "all") -> dict[str, Any]:
        return {
            "topic": {
                resource.name: {
                    key: {"value": value}
                    for key, value in {
                        "min.insync.replicas": self.min_insync_default,
                        **self.topics[resource.name]["configs"],
                    }.items()
                }
                for resource in resources
            }
        }

    def alter_configs(self, resources: list[Any]) -> None:
        for resource in resources:
            self.topics[resource.name]["configs"].update(resource.configs)


def catalogue() -> tuple[Topic, ...]:
    return CATALOGUE[:2]


def test_without_settings_the_catalogue_has_one_replica_and_a_min_isr_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("H200_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("H200_MIN_INSYNC_REPLICAS", raising=False)
    admin = FakeAdmin(brokers=1)
    report = ensure_topics(admin, catalogue())  # type: ignore[arg-type]
    assert report.problems == [] and report.created == [t.name for t in catalogue()]
    assert {t["replicas"] for t in admin.topics.values()} == {1}
    assert {t["configs"]["min.insync.replicas"] for t in admin.topics.values()} == {"1"}


def test_the_environment_sets_the_replication_of_new_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H200_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("H200_MIN_INSYNC_REPLICAS", "2")
    admin = FakeAdmin(brokers=3)
    assert ensure_topics(admin, catalogue()).problems == []  # type: ignore[arg-type]
    assert {t["replicas"] for t in admin.topics.values()} == {3}
    assert {t["configs"]["min.insync.replicas"] for t in admin.topics.values()} == {"2"}
    assert all(admin.topics[t.name]["configs"]["retention.ms"] == "-1" for t in catalogue())


def test_a_topic_with_other_replicas_is_reported_not_changed() -> None:
    admin = FakeAdmin(brokers=3)
    ensure_topics(admin, catalogue(), Replication(1, 1))  # type: ignore[arg-type]
    report = ensure_topics(admin, catalogue(), Replication(3, 2))  # type: ignore[arg-type]
    assert len(report.problems) == len(catalogue())
    assert "has 1 replicas per partition, H200_REPLICATION_FACTOR says 3" in report.problems[0]
    assert {t["replicas"] for t in admin.topics.values()} == {1}


def test_settings_of_another_replication_leave_the_min_isr_alone() -> None:
    admin = FakeAdmin(brokers=3)
    ensure_topics(admin, catalogue(), Replication(3, 2))  # type: ignore[arg-type]
    report = ensure_topics(admin, catalogue(), Replication(1, 1))  # type: ignore[arg-type]
    assert report.reconfigured == [] and len(report.problems) == len(catalogue())
    assert {t["configs"]["min.insync.replicas"] for t in admin.topics.values()} == {"2"}


def test_a_drifted_min_isr_is_restored() -> None:
    admin = FakeAdmin(brokers=3)
    ensure_topics(admin, catalogue(), Replication(3, 2))  # type: ignore[arg-type]
    name = catalogue()[0].name
    admin.topics[name]["configs"]["min.insync.replicas"] = "1"
    report = ensure_topics(admin, catalogue(), Replication(3, 2))  # type: ignore[arg-type]
    assert report.reconfigured == [f"{name} (min.insync.replicas)"] and report.problems == []
    assert admin.topics[name]["configs"]["min.insync.replicas"] == "2"


def test_more_replicas_than_brokers_is_a_problem_to_report() -> None:
    admin = FakeAdmin(brokers=1)
    report = ensure_topics(admin, catalogue(), Replication(3, 2))  # type: ignore[arg-type]
    assert report.created == [] and len(report.problems) == len(catalogue())
    assert "set H200_REPLICATION_FACTOR to at most their number" in report.problems[0]


def test_a_partition_count_and_a_replication_drift_are_both_reported() -> None:
    admin = FakeAdmin(brokers=3)
    ensure_topics(admin, catalogue()[:1], Replication(1, 1))  # type: ignore[arg-type]
    wider = (replace(catalogue()[0], partitions=catalogue()[0].partitions + 1),)
    problems = ensure_topics(admin, wider, Replication(3, 2)).problems  # type: ignore[arg-type]
    assert len(problems) == 2 and "partitions" in problems[0] and "replicas per partition" in problems[1]


def test_a_min_isr_above_the_replication_factor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H200_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("H200_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValidationError, match="every write would be refused"):
        ClusterSettings()
