"""Processes started with web ports answer /metrics, /health and /ready there; without, faust's web stays off."""

from __future__ import annotations

from pathlib import Path

from services.ops.supervisor import Supervisor, web_ports


def test_each_worker_and_the_projector_get_a_port_of_their_own(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, env=web_ports(39100))

    first, second = supervisor.service("intake", 1), supervisor.service("intake", 2)
    fulfilment, projector = supervisor.service("fulfilment"), supervisor.projector()

    assert (first.web_port, second.web_port, fulfilment.web_port, projector.web_port) == (39100, 39101, 39130, 39140)
    assert first.env["H200_INTAKE_WEB_PORT"] == "39100" and "--with-web" in first.command
    assert projector.env["H200_PROJECTOR_METRICS_PORT"] == "39140"
    assert first.url == "http://127.0.0.1:39100"


def test_without_ports_no_web_server_is_started(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, env={})

    worker, projector = supervisor.service("approval"), supervisor.projector()

    assert "--without-web" in worker.command and worker.url is None and projector.url is None


def test_each_slot_joins_its_group_as_a_static_member_under_its_own_name(tmp_path: Path) -> None:
    # A slot restarted after a crash rejoins under the same group.instance.id and gets its partitions back at once;
    # two slots of one service must never share an id (they would fence each other).
    supervisor = Supervisor(tmp_path, env={})

    first, second = supervisor.service("allocation", 1), supervisor.service("allocation", 2)
    again = supervisor.service("allocation", 1)

    assert first.env["H200_ALLOCATION_GROUP_INSTANCE_ID"] == "allocation-1"
    assert second.env["H200_ALLOCATION_GROUP_INSTANCE_ID"] == "allocation-2"
    assert again.env["H200_ALLOCATION_GROUP_INSTANCE_ID"] == first.env["H200_ALLOCATION_GROUP_INSTANCE_ID"]
