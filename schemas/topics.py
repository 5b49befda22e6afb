"""The topic catalogue: every topic, its key, partitions, retention and the messages it carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import allocation, approval, fulfilment, intake, policy, supply
from schemas.base import Message

KEEP_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
"""Event topics are the system of record: no time or size limit may delete history."""


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
)
APPROVAL_MESSAGES: tuple[type[Message], ...] = (
    approval.OrderApproved,
    approval.OrderDenied,
    approval.OrderHeld,
    approval.ApprovalSuspended,
    approval.ApprovalReinstated,
    approval.ApprovalRevoked,
    approval.ApprovalReleased,
)

SERVICES = ("intake", "approval", "allocation", "fulfilment", "projector")

CATALOGUE: tuple[Topic, ...] = (
    Topic(
        "h200.intake.commands",
        "buyer_id",
        6,
        "Order submissions, cancellations and added documents from upstream buyer systems.",
        (intake.SubmitOrder, intake.CancelOrder, intake.AddOrderDocuments),
        ("upstream", "ops"),
        ("intake",),
    ),
    Topic(
        "h200.orders",
        "buyer_id",
        6,
        "Orders as intake recorded them: placed, rejected at submission, documents added, cancelled.",
        (intake.OrderPlaced, intake.OrderSubmissionRejected, intake.OrderDocumentsAdded, intake.OrderCancelled),
        ("intake",),
        ("approval", "projector"),
    ),
    Topic(
        "h200.policy",
        "policy_id",
        1,
        "Both governments' rules and the allocation rule, as versioned data. One partition: one history.",
        POLICY_MESSAGES,
        ("ops",),
        ("approval", "allocation", "projector"),
    ),
    Topic(
        "h200.supply",
        "pool_id",
        3,
        "Manufactured batches as they become ready.",
        (supply.BatchManufactured,),
        ("ops",),
        ("allocation", "projector"),
    ),
    Topic(
        "h200.approvals",
        "buyer_id",
        6,
        "Two-gate decisions on orders and their later suspension, revocation and release.",
        APPROVAL_MESSAGES,
        ("approval",),
        ("allocation", "projector"),
    ),
    Topic(
        "h200.allocation.inbox",
        "pool_id",
        3,
        "Everything allocation decides on, re-keyed by pool so one writer sees one pool in one order.",
        (*APPROVAL_MESSAGES, supply.BatchManufactured, policy.AllocationPolicySet, fulfilment.DeliveryFailed),
        ("allocation",),
        ("allocation",),
        carries_copies=True,
    ),
    Topic(
        "h200.allocations",
        "pool_id",
        3,
        "The ledger: chips of a batch allocated to an order, and chips released back to the pool.",
        (allocation.ChipsAllocated, allocation.AllocationReleased),
        ("allocation",),
        ("fulfilment", "projector"),
    ),
    Topic(
        "h200.fulfilment.commands",
        "allocation_id",
        6,
        "Logistics reports on shipments: packed, shipped, customs, delivered, held, lost, refused.",
        (fulfilment.RecordFulfilmentStep,),
        ("logistics", "ops"),
        ("fulfilment",),
    ),
    Topic(
        "h200.fulfilment",
        "allocation_id",
        6,
        "Shipment steps recorded per allocation, and failed deliveries whose chips return to the pool.",
        (fulfilment.FulfilmentStepRecorded, fulfilment.DeliveryFailed),
        ("fulfilment",),
        ("allocation", "projector"),
    ),
    *(
        Topic(
            f"h200.dlq.{service}",
            "the original record key",
            1,
            f"Input the {service} service could not accept: the original bytes as the value, the error and "
            "the source topic, partition and offset in headers (dlq.*).",
            (),
            (service,),
            ("ops",),
            dead_letter=True,
        )
        for service in SERVICES
    ),
)

BY_NAME: dict[str, Topic] = {topic.name: topic for topic in CATALOGUE}

DEAD_LETTER_HEADERS = {
    "dlq.error_code": "stable code of the failure, e.g. malformed_json, invalid_payload, unknown_message_type",
    "dlq.error": "what is wrong, naming the field",
    "dlq.source_topic": "topic the record was read from",
    "dlq.source_partition": "its partition (decimal)",
    "dlq.source_offset": "its offset (decimal)",
    "dlq.service": "the service that refused it",
    "dlq.at": "when it was refused (ISO 8601, UTC)",
}
