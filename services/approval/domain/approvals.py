"""What a policy coming into force does to approvals already given (suspend, reinstate, revoke, trim to a smaller
limit) and to held orders, and what the end of a licence's validity does to the approvals drawing on it."""

from __future__ import annotations

from schemas.approval import ApprovalExpired, ApprovalReinstated, ApprovalRevoked, ApprovalSuspended
from schemas.base import Gate, Message, PolicyRef, Reason
from schemas.policy import (
    DeniedPartyListed,
    ExportLicenceIssued,
    ExportLicenceRevoked,
    ImporterAuthorised,
    ImporterReinstated,
    ImporterRevoked,
    ImporterSuspended,
    PolicyEvent,
    TrancheQuotaSet,
)
from services.approval.domain.gates import TEXT_LIMIT
from services.approval.domain.policies import ref_of
from services.approval.domain.state import OrderRecord
from services.approval.domain.trial import Trial
from services.approval.domain.verdict import decision_fields


def reason(gate: Gate, code: str, message: str) -> Reason:
    return Reason(code=code, message=message[:TEXT_LIMIT], gate=gate)


def consequences(trial: Trial, event: PolicyEvent) -> list[Message]:
    """The events a newly applied policy causes on the open approvals of its buyer, oldest approval first."""
    trigger = ref_of(event)
    match event:
        case ImporterSuspended():
            why = reason("cn_import", "importer_suspended", f"import authorisation suspended: {event.reason}")
            return [suspend(trial, order, why, trigger) for order in approvals_of(trial, event.buyer_id, "approved")]
        case ImporterAuthorised() | ImporterReinstated():
            why = reason("cn_import", "importer_reinstated", "import authorisation in force again")
            return [reinstate(trial, order, why, trigger) for order in approvals_of(trial, event.buyer_id, "suspended")]
        case ImporterRevoked():
            why = reason("cn_import", "importer_revoked", f"import authorisation revoked: {event.reason}")
            return revoke_all(trial, approvals_of(trial, event.buyer_id), why, trigger)
        case DeniedPartyListed():
            text = f"buyer put on the US denied-party list {event.policy_id}: {event.reason}"
            why = reason("us_export", "denied_party", text)
            return revoke_all(trial, approvals_of(trial, event.buyer_id), why, trigger)
        case ExportLicenceRevoked():
            why = reason("us_export", "licence_revoked", f"licence {event.licence_id} revoked: {event.reason}")
            under = [order for order in approvals_of(trial, event.buyer_id) if on_licence(order, event.licence_id)]
            return revoke_all(trial, under, why, trigger)
        case ExportLicenceIssued() if event.valid_until <= trial.cause.at:
            # Issued again with a validity that has already ended: its approvals end as if it had just expired.
            return expire(trial, event.buyer_id, event.licence_id)
        case ExportLicenceIssued():
            why = reason("us_export", "licence_reduced", f"licence {event.licence_id} cut to {event.quantity} chips")
            under = [order for order in approvals_of(trial, event.buyer_id) if on_licence(order, event.licence_id)]
            return trim(trial, under, event.quantity, why, trigger)
        case TrancheQuotaSet():
            why = reason("cn_import", "quota_reduced", f"quota of tranche {event.tranche_id} cut to {event.quantity}")
            under = [order for order in approvals_of(trial, event.buyer_id) if on_tranche(order, event.tranche_id)]
            return trim(trial, under, event.quantity, why, trigger)
    return []


def expire(trial: Trial, buyer_id: str, licence_id: str) -> list[Message]:
    """The licence in force no longer covers the decision time: every open approval drawing on it expires (a
    licence renewed in time covers it still and nothing expires)."""
    licence = trial.policy(buyer_id).licences.get(licence_id)
    if licence is None or licence.valid_until > trial.cause.at:
        return []
    text = f"licence {licence_id} is valid only until {licence.valid_until.isoformat()}"
    why = reason("us_export", "licence_expired", text)
    expired: list[Message] = []
    for order in approvals_of(trial, buyer_id):
        if on_licence(order, licence_id) and order.order_id not in trial.closing:
            fields = decision_fields(order.placed, (licence.ref, *trial.grant_refs(order)), trial.cause)
            trial.closing.add(order.order_id)
            expired.append(ApprovalExpired(**fields, licence_id=licence_id, reason=why))
    return expired


def approvals_of(trial: Trial, buyer_id: str, status: str | None = None) -> list[OrderRecord]:
    found = trial.state.book_of(buyer_id).open_approvals()
    return [order for order in found if status is None or order.status == status]


def on_licence(order: OrderRecord, licence_id: str) -> bool:
    return order.grant is not None and order.grant.licence_id == licence_id


def on_tranche(order: OrderRecord, tranche_id: str) -> bool:
    return order.grant is not None and order.grant.tranche_id == tranche_id


def suspend(trial: Trial, order: OrderRecord, why: Reason, trigger: PolicyRef) -> Message:
    fields = decision_fields(order.placed, (trigger, *trial.grant_refs(order)), trial.cause)
    return ApprovalSuspended(**fields, reason=why)


def reinstate(trial: Trial, order: OrderRecord, why: Reason, trigger: PolicyRef) -> Message:
    fields = decision_fields(order.placed, (trigger, *trial.grant_refs(order)), trial.cause)
    return ApprovalReinstated(**fields, reason=why)


def revoke(trial: Trial, order: OrderRecord, why: Reason, trigger: PolicyRef) -> list[Message]:
    """Withdraw an approval for good. Its licence and quota use is given back only when the order book has closed
    the order (OrderClosed), and only for the chips that did not ship."""
    fields = decision_fields(order.placed, (trigger, *trial.grant_refs(order)), trial.cause)
    trial.closing.add(order.order_id)
    return [ApprovalRevoked(**fields, reason=why)]


def revoke_all(trial: Trial, orders: list[OrderRecord], why: Reason, trigger: PolicyRef) -> list[Message]:
    return [event for order in orders for event in revoke(trial, order, why, trigger)]


def trim(trial: Trial, under: list[OrderRecord], limit: int, why: Reason, trigger: PolicyRef) -> list[Message]:
    """A licence or quota cut below what its approvals hold: revoke the newest of them until the rest fit."""
    total = sum(order.grant.quantity for order in under if order.grant is not None)
    events: list[Message] = []
    for order in reversed(under):
        if total <= limit or order.grant is None:
            break
        total -= order.grant.quantity
        events += revoke(trial, order, why, trigger)
    return events
