"""Every contract by (type, version), and the upcasters that lift old versions to the current one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas import allocation, approval, clock, fulfilment, intake, outcomes, policy, supply
from schemas.base import Message

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

ALL_MESSAGES: tuple[type[Message], ...] = (
    intake.SubmitOrder,
    intake.CancelOrder,
    intake.AddOrderDocuments,
    intake.OrderPlaced,
    intake.OrderSubmissionRejected,
    intake.OrderDocumentsAdded,
    intake.OrderCancelled,
    intake.CommandRejected,
    outcomes.SubmissionUnchanged,
    outcomes.SubmissionMalformed,
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
    clock.ClockTicked,
    supply.BatchManufacturedV1,
    supply.BatchManufactured,
    approval.OrderApproved,
    approval.OrderDenied,
    approval.OrderHeld,
    approval.ApprovalSuspended,
    approval.ApprovalReinstated,
    approval.ApprovalRevoked,
    approval.ApprovalCancelled,
    approval.ApprovalExpired,
    approval.ApprovalReleased,
    clock.ApprovalsPassedV1,
    clock.ApprovalsPassed,
    allocation.ChipsAllocated,
    allocation.AllocationReleased,
    allocation.AllocationRecallRequested,
    allocation.AllocationSuspended,
    allocation.AllocationReinstated,
    allocation.OrderClosed,
    fulfilment.RecordFulfilmentStep,
    fulfilment.FulfilmentStepRecorded,
    fulfilment.DeliveryFailed,
    fulfilment.FulfilmentStepRejected,
    fulfilment.RecallAnswered,
)

BY_TYPE_AND_VERSION: dict[tuple[str, int], type[Message]] = {
    (message.TYPE, message.VERSION): message for message in ALL_MESSAGES
}

CURRENT: dict[str, type[Message]] = {}
for _message in ALL_MESSAGES:
    if _message.TYPE not in CURRENT or _message.VERSION > CURRENT[_message.TYPE].VERSION:
        CURRENT[_message.TYPE] = _message


def _batch_manufactured_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # Before pools existed every batch went to the single H200 pool.
    return {**payload, "pool_id": "h200"}


def _approvals_passed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # Before version 2 every marker was copied to, and counted by, every allocation partition.
    return {**payload, "lane_only": False}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("BatchManufactured", 1): _batch_manufactured_v1_to_v2,
    ("ApprovalsPassed", 1): _approvals_passed_v1_to_v2,
}
"""(type, version) -> function lifting a payload of that version to version + 1."""


def upcast(type_: str, version: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Lift a raw payload step by step to the current version of its type."""
    current = CURRENT[type_].VERSION
    while version < current:
        payload = UPCASTERS[(type_, version)](payload)
        version += 1
    return version, payload
