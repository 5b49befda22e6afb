"""The topic catalogue: every topic, its key, partitions, retention and the messages it carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import allocation, approval, clock, fulfilment, intake, outcomes, policy, supply
from schemas.base import Message

KEEP_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
"""Event topics are the system of record: no time or size limit may delete history."""

INBOX = {**KEEP_FOREVER, "message.timestamp.type": "LogAppendTime"}
"""An inbox is where a service learns of what it decides on: the broker stamps each record with the time it was
appended, and that time (not any sender's) is when the service learned it (docs/time.md)."""


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    partitions: int
    description: str
    messages: tuple[type[Message], ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    config: dict[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))
    dead_letter: bool = False
    carries_copies: bool = False
    """True for a topic that re-keys messages first published elsewhere (their home is another topic)."""
    broadcast: tuple[type[Message], ...] = ()
    """Messages copied to every partition of this topic (rules that concern every key)."""


POLICY_MESSAGES: tuple[type[Message], ...] = (
    policy.ExportLicenceIssued,
    policy.ExportLicenceRevoked,
    policy.DeniedPartyListed,
    policy.DeniedPartyDelisted,
    policy.ImporterAuthorised,
    policy.ImporterSuspended,
    policy.ImporterReinstated,
    policy.ImporterRevoked,
    policy.TrancheQuotaSet,
    policy.ImportUseRulesSet,
    policy.AllocationPolicySet,
    policy.SubmissionWindowSet,
)
INTAKE_COMMANDS: tuple[type[Message], ...] = (intake.SubmitOrder, intake.CancelOrder, intake.AddOrderDocuments)
APPROVAL_MESSAGES: tuple[type[Message], ...] = (
    approval.OrderApproved,
    approval.OrderDenied,
    approval.OrderHeld,
    approval.ApprovalSuspended,
    approval.ApprovalReinstated,
    approval.ApprovalRevoked,
    approval.ApprovalCancelled,
    approval.ApprovalExpired,
    approval.ApprovalReleased,
)
LINE_MESSAGES: tuple[type[Message], ...] = (
    allocation.AllocationRecallRequested,
    allocation.AllocationSuspended,
    allocation.AllocationReinstated,
)
"""What allocation tells fulfilment about a line besides the ledger itself."""

OUTCOME_MESSAGES: tuple[type[Message], ...] = (
    intake.OrderPlaced,
    intake.OrderSubmissionRejected,
    intake.OrderDocumentsAdded,
    intake.OrderCancelled,
    intake.CommandRejected,
    outcomes.SubmissionUnchanged,
    outcomes.SubmissionMalformed,
)
"""The one answer a submitter gets to each record it writes (schemas/outcomes.py)."""

SERVICES = ("intake", "approval", "allocation", "fulfilment", "projector")
APPROVAL_POLICIES = tuple(
    m for m in POLICY_MESSAGES if m not in (policy.AllocationPolicySet, policy.SubmissionWindowSet)
)

CATALOGUE: tuple[Topic, ...] = (
    Topic(
        name="h200.intake.commands",
        key="buyer_id",
        partitions=6,
        description="Order submissions, cancellations and added documents from upstream buyer systems. Any key "
        "and partition their clients choose is accepted: intake copies each one into h200.intake.inbox by buyer.",
        messages=INTAKE_COMMANDS,
        producers=("upstream", "ops"),
        consumers=("intake",),
    ),
    Topic(
        name="h200.intake.inbox",
        key="buyer_id",
        partitions=6,
        description="Everything intake decides on, re-keyed by buyer: one buyer's submissions, cancellations and "
        "documents in one partition and one order, whatever key or partition the upstream client chose; the "
        "submission time window (a policy) in every partition. The broker's append time is the time of receipt.",
        messages=(*INTAKE_COMMANDS, policy.SubmissionWindowSet),
        producers=("intake",),
        consumers=("intake",),
        config=dict(INBOX),
        carries_copies=True,
        broadcast=(policy.SubmissionWindowSet,),
    ),
    Topic(
        name="h200.orders",
        key="buyer_id",
        partitions=6,
        description="Orders as intake recorded them: placed, rejected, documents added, cancelled.",
        messages=(
            intake.OrderPlaced,
            intake.OrderSubmissionRejected,
            intake.OrderDocumentsAdded,
            intake.OrderCancelled,
            intake.CommandRejected,
        ),
        producers=("intake",),
        consumers=("approval", "projector"),
    ),
    Topic(
        name="h200.outcomes",
        key="buyer_id",
        partitions=6,
        description="The outcome of every record written to h200.intake.commands, one each, for the gateways that "
        "write there (the upstream gateway principal, the HTTP API): a copy of the order fact it caused (same id), "
        "SubmissionUnchanged, or SubmissionMalformed. causation_id is the command's id, correlation_id its "
        "correlation_id. A buyer system's own submissions are answered on h200.outcomes.<buyer> instead.",
        messages=OUTCOME_MESSAGES,
        producers=("intake",),
        consumers=("upstream", "api"),
    ),
    Topic(
        name="h200.policy",
        key="policy_id",
        partitions=1,
        description="Both governments' rules and the allocation rule, as versioned data. One partition: one history.",
        messages=POLICY_MESSAGES,
        producers=("ops",),
        consumers=("intake", "approval", "allocation", "projector"),
    ),
    Topic(
        name="h200.clock",
        key="clock_id",
        partitions=1,
        description="Business time as data: ticks of the clock process, strictly increasing. Copied into every "
        "partition of the approval and allocation inboxes, where what falls due is decided on the tick.",
        messages=(clock.ClockTicked,),
        producers=("clock",),
        consumers=("approval", "allocation"),
    ),
    Topic(
        name="h200.supply",
        key="pool_id",
        partitions=3,
        description="Manufactured batches as they become ready.",
        messages=(supply.BatchManufactured,),
        producers=("ops",),
        consumers=("allocation", "projector"),
    ),
    Topic(
        name="h200.approval.inbox",
        key="buyer_id",
        partitions=6,
        description="Everything approval decides on, re-keyed by buyer: its orders and the policies that concern "
        "it. Rules for every buyer (ImportUseRulesSet) and clock ticks are copied to every "
        "partition. The broker's append time is when approval learned of each record.",
        messages=(
            intake.OrderPlaced,
            intake.OrderDocumentsAdded,
            intake.OrderCancelled,
            *APPROVAL_POLICIES,
            allocation.OrderClosed,
            clock.ClockTicked,
        ),
        producers=("approval",),
        consumers=("approval",),
        config=dict(INBOX),
        carries_copies=True,
        broadcast=(policy.ImportUseRulesSet, clock.ClockTicked),
    ),
    Topic(
        name="h200.approvals",
        key="pool_id",
        partitions=3,
        description="Two-gate decisions on orders and their later suspension, cancellation, revocation, expiry and "
        "release. Keyed by pool: a pool's approvals are in one partition in the order they were recorded, and one "
        "router copies them in that order into the allocation inbox, whose partition of the same number (the same "
        "partitions, the same key) is the only one this lane feeds. After each tick every approval partition writes "
        "an ApprovalsPassed marker to every partition (lane), behind all it decided before the tick.",
        messages=(*APPROVAL_MESSAGES, clock.ApprovalsPassed),
        broadcast=(clock.ApprovalsPassed,),
        producers=("approval",),
        consumers=("allocation", "projector"),
    ),
    Topic(
        name="h200.allocation.inbox",
        key="pool_id",
        partitions=3,
        description="Everything allocation decides on, re-keyed by pool so one writer sees one pool in one order; "
        "clock ticks in every partition; approval's lane-only markers (version 2) in their lane's partition, older "
        "ones in every partition. The broker's append time is when allocation learned "
        "of each record.",
        messages=(
            *APPROVAL_MESSAGES,
            supply.BatchManufactured,
            policy.AllocationPolicySet,
            fulfilment.FulfilmentStepRecorded,
            fulfilment.DeliveryFailed,
            fulfilment.RecallAnswered,
            clock.ApprovalsPassed,
            clock.ClockTicked,
        ),
        producers=("allocation",),
        consumers=("allocation",),
        config=dict(INBOX),
        carries_copies=True,
        broadcast=(clock.ApprovalsPassed, clock.ClockTicked),
    ),
    Topic(
        name="h200.allocations",
        key="pool_id",
        partitions=3,
        description="The ledger: chips of a batch allocated to an order, and chips released back to the pool; "
        "recalls and suspensions of lines for fulfilment; orders the book has closed, for approval.",
        messages=(allocation.ChipsAllocated, allocation.AllocationReleased, *LINE_MESSAGES, allocation.OrderClosed),
        producers=("allocation",),
        consumers=("approval", "fulfilment", "projector"),
    ),
    Topic(
        name="h200.fulfilment.commands",
        key="allocation_id",
        partitions=6,
        description="Fulfilment's inbox: logistics reports on shipments (packed, shipped, customs, delivered, held, "
        "lost, refused) and copies of the ledger lines re-keyed by allocation.",
        messages=(
            fulfilment.RecordFulfilmentStep,
            allocation.ChipsAllocated,
            allocation.AllocationReleased,
            *LINE_MESSAGES,
        ),
        producers=("logistics", "ops", "fulfilment"),
        consumers=("fulfilment",),
        config=dict(INBOX),
    ),
    Topic(
        name="h200.fulfilment",
        key="allocation_id",
        partitions=6,
        description="Shipment steps recorded per allocation, refused reports, and failed deliveries whose chips "
        "return to the pool.",
        messages=(
            fulfilment.FulfilmentStepRecorded,
            fulfilment.DeliveryFailed,
            fulfilment.FulfilmentStepRejected,
            fulfilment.RecallAnswered,
        ),
        producers=("fulfilment",),
        consumers=("allocation", "projector"),
    ),
    *(
        Topic(
            name=f"h200.dlq.{service}",
            key="the original record key",
            partitions=1,
            description=f"Input the {service} service could not accept: the original bytes as the value, the "
            "error and the source topic, partition and offset in headers (dlq.*).",
            messages=(),
            producers=(service,),
            consumers=("ops",),
            dead_letter=True,
        )
        for service in SERVICES
    ),
)

BY_NAME: dict[str, Topic] = {topic.name: topic for topic in CATALOGUE}

EVENT_TOPICS: tuple[str, ...] = tuple(topic.name for topic in CATALOGUE if "projector" in topic.consumers)
"""The facts: every topic a read model is built from and a replay folds."""


SUBMISSIONS_PREFIX = "h200.submissions."


def submission_topic(buyer_id: str) -> Topic:
    """A buyer's own submission topic: only that buyer's system may write it, and intake copies into its inbox only
    the commands of that buyer found there (docs/security.md)."""
    return Topic(
        name=f"{SUBMISSIONS_PREFIX}{buyer_id}",
        key="buyer_id",
        partitions=1,
        description=f"Order submissions, cancellations and added documents of buyer {buyer_id}, from its own system "
        "alone (its principal upstream-<buyer> may write nothing else). A command for another buyer is dead-lettered.",
        messages=INTAKE_COMMANDS,
        producers=("upstream",),
        consumers=("intake",),
    )


OUTCOMES_PREFIX = "h200.outcomes."


def outcome_topic(buyer_id: str) -> Topic:
    """A buyer's own outcome topic: the answer to each record on h200.submissions.<buyer>, readable by that buyer's
    system alone (and the auditor)."""
    return Topic(
        name=f"{OUTCOMES_PREFIX}{buyer_id}",
        key="buyer_id",
        partitions=1,
        description=f"The outcome of every record on h200.submissions.{buyer_id}, one each: a copy of the order "
        "fact it caused (same id), SubmissionUnchanged, or SubmissionMalformed. Read by upstream-<buyer> only.",
        messages=OUTCOME_MESSAGES,
        producers=("intake",),
        consumers=("upstream",),
    )


def outcome_topic_of(source_topic: str | None) -> str:
    """Where the outcome of a record read from `source_topic` goes: the channel it came by answers it. A buyer's
    submission topic is answered on that buyer's outcome topic, anything else (h200.intake.commands, or a source
    not known) on h200.outcomes."""
    buyer = buyer_of_submission_topic(source_topic or "")
    return outcome_topic(buyer).name if buyer is not None else "h200.outcomes"


def buyer_topics(buyers: tuple[str, ...]) -> tuple[Topic, ...]:
    """Each buyer system's own pair: its submission topic and its outcome topic (`h200 access apply` creates them)."""
    return tuple(topic for buyer in buyers for topic in (submission_topic(buyer), outcome_topic(buyer)))


def buyer_of_submission_topic(name: str) -> str | None:
    return name.removeprefix(SUBMISSIONS_PREFIX) if name.startswith(SUBMISSIONS_PREFIX) else None


def inputs_of(service: str) -> tuple[str, ...]:
    """The topics a service reads (its inbox and the sources its routers copy from), as the catalogue says."""
    return tuple(topic.name for topic in CATALOGUE if service in topic.consumers)


CORRELATION_HEADER = "correlation_id"
SOURCE_HEADER = "h200.source_topic"
COMMAND_HEADERS = {
    CORRELATION_HEADER: "optional, set by the sender: the correlation id (UUID) of what it sends; read only when the "
    "value cannot be, to correlate the SubmissionMalformed answer",
    SOURCE_HEADER: "set by intake on its inbox copy (h200.intake.inbox) alone: the submission topic the command was "
    "read from, whose outcome topic answers it",
}
"""The record headers of an intake command: none is required, and none is trusted from a sender but the first."""

DEAD_LETTER_HEADERS = {
    "dlq.error_code": "stable code of the failure, e.g. malformed_json, too_deep, number_too_long, duplicate_key, "
    "invalid_payload, unknown_message_type, oversized, empty_value, processing_failed",
    "dlq.error": "what is wrong, naming the field",
    "dlq.source_topic": "topic the record was read from",
    "dlq.source_partition": "its partition (decimal)",
    "dlq.source_offset": "its offset (decimal)",
    "dlq.service": "the service that refused it",
    "dlq.at": "when it was refused (ISO 8601, UTC)",
    "dlq.original_length": "length of the original value in bytes (decimal; 0 for a record without a value)",
    "dlq.original_sha256": "SHA-256 of the original value (hex), to check a copy found at the source coordinates",
    "dlq.truncated": "true when the record did not fit in a dead letter whole: the value is then its first 64 KiB "
    "(less if the cluster's limit leaves less), the key its first 1 KiB, and the record's own headers are dropped "
    "if they do not fit; false otherwise",
}

DECIDING_INBOXES = {
    "intake": "h200.intake.inbox",
    "approval": "h200.approval.inbox",
    "allocation": "h200.allocation.inbox",
    "fulfilment": "h200.fulfilment.commands",
}
"""The inbox each deciding service runs its core over."""


def journal_topic(service: str) -> str:
    return f"h200.{service}.journal"


JOURNALS: tuple[Topic, ...] = tuple(
    Topic(
        name=journal_topic(service),
        key="inbox offset",
        partitions=BY_NAME[inbox].partitions,
        description=f"What {service} decided on each record of {inbox} (schemas.journal.JournalEntry), written "
        "before any of it is sent; partition p journals inbox partition p. Internal: a worker rebuilds from it "
        "instead of deciding again. Kept as long as the inbox.",
        messages=(),
        producers=(service,),
        consumers=(service,),
    )
    for service, inbox in DECIDING_INBOXES.items()
)
"""Internal topics: not part of the published contract and never read by a replay."""

MANAGED: tuple[Topic, ...] = CATALOGUE + JOURNALS
"""Every topic `h200 topics create` makes: the catalogue and the internal journals."""
