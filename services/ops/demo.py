"""The main job: the four services, the projector and the clock as processes, the article's scenario played through
them phase by phase, then the ledger: who got which H200 batches, how many and when, checked by an audit.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from schemas.base import Message
from schemas.envelope import order_id_for
from schemas.fulfilment import RecordFulfilmentStep
from services.api.callers import AUDITOR
from services.common.kafka_auth import kafka_python_options
from services.common.settings import ClusterSettings
from services.ops import scenario, story
from services.ops.audit import check_invariants, check_settled_protocol, ledger_rows, read_log
from services.ops.cli import main as cli
from services.ops.kafka_clients import admin_client
from services.ops.publish import publish, summarise
from services.ops.settings import OpsSettings
from services.ops.settle import Lag, wait_until_settled
from services.ops.supervisor import RestartPolicy, Supervisor, web_ports
from services.ops.topics import ensure_topics
from services.ops.views import ledger_view, order_view, totals_view
from services.projector.store import ReadModelStore, current_store

BOLD, END = "\033[1m", "\033[0m"
WEB_PORTS = 39100
STORY_DAY = timedelta(milliseconds=100)
STEP_APART = timedelta(milliseconds=10)
"""The logistics story compressed: a day of shipping in 100 ms, lines starting 10 ms apart."""
API_PORT = 39150
"""The demo's HTTP API (services.api): curl 127.0.0.1:39150/v1/ledger while it runs."""
"""The demo's services answer /metrics, /health and /ready from here on (services.ops.supervisor.web_ports)."""


def _progress(lag: Lag) -> None:
    behind = "  ".join(f"{reader.removeprefix('h200-')} {n}" for reader, n in lag.by_reader.items())
    sys.stdout.write(f"\r    waiting for every reader to catch up: {behind}   ")
    sys.stdout.flush()


class Demo:
    def __init__(self, settings: OpsSettings, log_dir: Path) -> None:
        self.settings = settings
        env = {**os.environ, **web_ports(WEB_PORTS), "H200_API_PORT": str(API_PORT)}
        self.supervisor = Supervisor(log_dir, env=env, restart=RestartPolicy())
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **kafka_python_options())
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, **kafka_python_options())
        self.before_policy_change = datetime.now(UTC)
        """When the policy change was published: `h200 replay --as-of` it shows the ledger as it stood before."""

    @property
    def store(self) -> ReadModelStore:
        """Resolved at each use: a rebuild may switch the read models to another namespace meanwhile."""
        return current_store(self.redis)

    def settle(self) -> None:
        self.supervisor.check_alive()
        wait_until_settled(self.admin, self.consumer, self.store, timeout_s=180, progress=_progress)
        sys.stdout.write(
            "\r    settled: every service and the projector have caught up (since then, only clock ticks)"
            + " " * 30
            + "\n"
        )

    def play(self, title: str, messages: Sequence[Message], producer: str = "ops") -> None:
        print(f"\n{BOLD}== {title}{END}")
        sent = publish(self.settings.bootstrap_servers, messages, producer)
        print(f"    published {summarise(sent)}")
        self.settle()

    def tell(self, lines: Sequence[str]) -> None:
        for line in lines:
            print(f"    {line}")

    def ship(self) -> None:
        lines = [line for line in self.store.ledger() if line["status"] == "allocated"]
        # Logistics reports what happened just now, after the lines were allocated (the system decided them at wall
        # time, docs/time.md): the story's nine days of shipping are told in the second before the reports go out,
        # so no step is dated before its line or after it was reported.
        start = datetime.now(UTC) - timedelta(seconds=2)
        steps: list[tuple[str, RecordFulfilmentStep]] = []
        for index, line in enumerate(lines):
            plan = scenario.shipment_plan(index, start + index * STEP_APART, STORY_DAY)
            for step, when in plan:
                steps.append(
                    (
                        line["allocation_id"],
                        RecordFulfilmentStep(allocation_id=line["allocation_id"], step=step, at=when),
                    )
                )
        # Report steps in the order they happened, as logistics would.
        ordered = [s for _, s in sorted(steps, key=lambda pair: (pair[1].at, pair[0]))]
        self.play(
            f"logistics: {len(lines)} shipments packed, shipped, cleared and delivered; one held, one lost",
            ordered,
            "logistics",
        )

    def send_garbage(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers, acks="all", **kafka_python_options()
        )
        producer.send("h200.intake.commands", key=b"unknown", value=b'{"type": "SubmitOrder", "version": 1, oops')
        producer.flush()
        producer.close()
        print("    an upstream system also sent one malformed record: it must land on h200.dlq.intake")

    def business_time(self) -> None:
        """A policy that takes effect after it is published and a licence that ends: decided on the clock's ticks."""
        now = datetime.now(UTC)
        effective_at, valid_until = now + scenario.AUTHORISED_AFTER, now + scenario.EXPIRES_AFTER
        self.play(
            f"business time: China authorises {scenario.LATER} from {effective_at:%H:%M:%S}; the US ends "
            f"{scenario.SHORTENED}'s licence at {valid_until:%H:%M:%S}",
            scenario.business_time(now),
        )
        print(f"    waiting for the clock to pass {valid_until:%H:%M:%S} ...")
        time.sleep(max(0.0, (valid_until - datetime.now(UTC)).total_seconds()) + 2)
        self.settle()
        log = read_log(self.settings.bootstrap_servers)
        self.tell(story.in_force_later(log, scenario.LATER, effective_at))
        self.tell(story.expiry(log, f"BIS-H200-{scenario.SHORTENED.upper()}", valid_until))

    def report(self) -> int:
        print(f"\n{BOLD}== the ledger: who got which H200 batches, how many and when{END}")
        print(ledger_view(self.store))
        print(f"\n{BOLD}== totals per buyer and per batch{END}")
        print(totals_view(self.store))
        print(f"\n{BOLD}== decision trails{END}")
        for buyer, ref in (("tencent", "TC-2026-002"), ("deepseek", "DS-2026-001"), ("sugon", "SG-2026-001")):
            print(order_view(self.store, str(order_id_for(buyer, ref))))
        print(f"\n{BOLD}== dead letters{END}  {self.store.dead_letters() or 'none'}")
        print(f"\n{BOLD}== audit of the event log against the invariants of domain.md{END}")
        log = read_log(self.settings.bootstrap_servers)
        problems = check_invariants(log)
        breaches = check_settled_protocol(self.settings.bootstrap_servers, log)
        live = ledger_rows(log)
        model = [line for line in self.store.ledger() if line["status"] == "allocated"]
        same = sorted(r["allocation_id"] for r in live) == sorted(m["allocation_id"] for m in model)
        print(f"    {len(log.events)} events read, {log.duplicates} duplicate records ignored by id")
        print(f"    read model ledger equals the ledger folded from the log: {'yes' if same else 'NO'}")
        print("    invariants: " + ("all hold" if not problems else "VIOLATED:\n      " + "\n      ".join(problems)))
        kept = "every recall answered, every ended order closed and released, no shipment after a recall or while "
        kept += "suspended"
        print("    protocol: " + (kept if not breaches else "BROKEN:\n      " + "\n      ".join(breaches)))
        as_of = self.before_policy_change.isoformat()
        print(f"\n{BOLD}== h200 replay --as-of {as_of}: the ledger as it stood before the policy change{END}")
        sys.stdout.flush()
        cli(["replay", "--as-of", as_of, "--no-progress"])
        print(f"\n{BOLD}== h200 verify: the whole log, its determinism and the live read model{END}")
        sys.stdout.flush()
        verified = cli(["verify", "--no-progress"])
        return 0 if same and not problems and not breaches and verified == 0 else 1

    def run(self) -> int:
        with admin_client(self.settings.bootstrap_servers) as admin:
            report = ensure_topics(admin)
        print(f"topics: {len(report.created)} created, {len(report.existing)} already there")
        print("starting intake, approval, allocation, fulfilment, the projector, the clock and the HTTP API ...")
        self.supervisor.start_all()
        self.supervisor.keep_running()
        for process in self.supervisor.processes.values():
            pages = "/console  /v1/ledger  /docs  /ready" if process.name == "api" else "/metrics  /health  /ready"
            where = f"{process.url}{pages}" if process.url else "(log only)"
            print(f"    {process.name:<13} {where}")
        auditor = ClusterSettings().api_secrets_dir / AUDITOR
        print(f'    (the API answers a bearer token: curl -H "Authorization: Bearer $(cat {auditor})" ...)')
        try:
            self.supervisor.wait_started(3.0)
            for index, phase in enumerate(scenario.PHASES):
                if phase.messages is scenario.policy_change:
                    self.before_policy_change = datetime.now(UTC)
                self.play(phase.title, phase.messages())
                if index == 1:
                    self.send_garbage()
                    self.settle()
            self.tell(story.revocation(read_log(self.settings.bootstrap_servers), scenario.REVOKED))
            self.ship()
            self.tell(story.losses(read_log(self.settings.bootstrap_servers)))
            self.play(scenario.FINAL.title, scenario.FINAL.messages())
            self.business_time()
            return self.report()
        finally:
            print("\nstopping the services ...")
            self.supervisor.stop_all()


def main() -> int:
    settings = OpsSettings()
    log_dir = Path(".run/demo")
    print(f"service logs: {log_dir}/*.log")
    return Demo(settings, log_dir).run()
