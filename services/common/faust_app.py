"""The faust app every service worker runs in: the cluster's settings turned into faust's (acks, sessions,
heartbeats, metadata ages, credentials), and the two faust classes replaced where their defaults cost us
(a progress spinner's logging hook, a second's pause at every start). services.common.worker builds the agents.
"""

from __future__ import annotations

import gc
import logging

import faust
from faust.tables.manager import TableManager

from services.common.kafka_auth import faust_credentials
from services.common.logs import logging_config
from services.common.outage_log import install_outage_log_filter
from services.common.prompt_delivery import PromptConsumer
from services.common.settings import ClusterSettings, WorkerSettings


class QuietWorker(faust.Worker):
    """faust's worker without its progress spinner's logging hook. At `-l warn` and above that hook sets the root
    logger to DEBUG so that the spinner turns on every record, and so every debug line of faust and aiokafka (a
    send's whole value among them) is formatted and then dropped by the handler: 7.6% of a busy approval worker's
    time in the recovery benchmark. The root logger keeps the level asked for."""

    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


class PromptTableManager(TableManager):
    """faust's table manager without the second it sleeps before it starts (faust.tables.manager, on_start): every
    start and restart waited that second before the first assignment could be served. We keep no faust tables (state
    is rebuilt by services.common.partitions), so there is nothing for that pause to wait for."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def make_faust_app(service: str, cluster: ClusterSettings, worker: WorkerSettings) -> faust.App:
    datadir = worker.datadir / service / worker.worker_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    gc.set_threshold(*worker.gc_thresholds)
    install_outage_log_filter()  # a broker outage is logged once and then by how long it lasts, not per attempt
    app = faust.App(
        f"h200-{service}",
        broker=f"kafka://{cluster.bootstrap_servers}",
        broker_credentials=faust_credentials(cluster),
        store="memory://",
        datadir=str(datadir),
        web_enabled=worker.web_port > 0,
        web_port=worker.web_port or 6066,
        web_bind="127.0.0.1",
        logging_config=logging_config(service, cluster.log_format),
        Worker=QuietWorker,
        TableManager=PromptTableManager,
        # Topics come from the catalogue (`h200 topics create`); faust must not invent its own.
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_replication_factor=cluster.replication_factor,
        consumer_auto_offset_reset="earliest",
        # Every in-sync replica has a record before it counts as sent (min.insync.replicas of the topic). Not
        # idempotent: faust 0.15.3 turns aiokafka's enable_idempotence on only inside exactly_once transactions
        # and has no setting for it, and aiokafka's idempotent sender stops for good on OutOfOrderSequenceNumber
        # after a broker outage (aiokafka #1017). A send retried across a leader change may then be written twice;
        # every reader skips repeats by event id, and aiokafka sends one batch per partition at a time, so a retry
        # cannot reorder a partition.
        producer_acks=-1,
        processing_guarantee="at_least_once",
        broker_session_timeout=worker.session_timeout_s,
        consumer_group_instance_id=worker.group_instance_id,
        broker_heartbeat_interval=worker.heartbeat_interval_s,
        broker_commit_interval=worker.commit_interval_s,
        # aiokafka's consumer does not refresh its metadata when a broker answers an offset request with
        # NotLeaderForPartition: it asks the same broker again until the metadata ages out (5 min by default). The
        # fault drill saw approval stuck that way for 4 min after a controller pause on the cluster (#11).
        consumer_metadata_max_age_ms=int(worker.metadata_max_age_s * 1000),
        producer_metadata_max_age_ms=int(worker.metadata_max_age_s * 1000),
    )
    # Records handed to the agents without four asyncio tasks each (services.common.prompt_delivery).
    app.transport.Consumer = PromptConsumer  # type: ignore[misc]  # the class this one app's transport makes
    return app
