"""How a policy event changes the policies in force. Pure: decide applies it to a copy, evolve for good."""

from __future__ import annotations

from dataclasses import replace

from schemas.base import PolicyRef
from schemas.policy import (
    DeniedPartyDelisted,
    DeniedPartyListed,
    ExportLicenceIssued,
    ExportLicenceRevoked,
    ImporterAuthorised,
    ImporterReinstated,
    ImporterRevoked,
    ImporterSuspended,
    ImportUseRulesSet,
    PolicyEvent,
    TrancheQuotaSet,
)
from services.approval.domain.state import (
    ApprovalState,
    BuyerBook,
    BuyerPolicy,
    Importer,
    Licence,
    SharedPolicy,
    Tranche,
)

BuyerPolicyEvent = (
    ExportLicenceIssued
    | ExportLicenceRevoked
    | DeniedPartyListed
    | DeniedPartyDelisted
    | ImporterAuthorised
    | ImporterSuspended
    | ImporterReinstated
    | ImporterRevoked
    | TrancheQuotaSet
)
APPROVAL_POLICIES: tuple[type[PolicyEvent], ...] = (
    ExportLicenceIssued,
    ExportLicenceRevoked,
    DeniedPartyListed,
    DeniedPartyDelisted,
    ImporterAuthorised,
    ImporterSuspended,
    ImporterReinstated,
    ImporterRevoked,
    TrancheQuotaSet,
    ImportUseRulesSet,
)
"""The policy events approval applies (AllocationPolicySet is allocation's)."""


def ref_of(event: PolicyEvent) -> PolicyRef:
    return PolicyRef(policy_id=event.policy_id, revision=event.revision)


def is_newer(revisions: dict[str, int], event: PolicyEvent) -> bool:
    """Only a revision above the last one seen of its policy counts: stale and repeated ones are ignored."""
    return isinstance(event, APPROVAL_POLICIES) and event.revision > revisions.get(event.policy_id, 0)


def supersedes(state: ApprovalState, event: PolicyEvent) -> bool:
    """A revision coming into force replaces the one in force only if it is newer: a pending revision overtaken by
    a later one that took effect first never comes into force."""
    return event.revision > state.in_force.get(event.policy_id, 0)


def bring_into_force(state: ApprovalState, event: PolicyEvent) -> None:
    """Make `event` the revision in force of its policy (the caller checked `supersedes`)."""
    state.in_force[event.policy_id] = event.revision
    state.shared = apply_to_shared(state.shared, event)
    if isinstance(event, BuyerPolicyEvent):
        book = state.buyers.setdefault(event.buyer_id, BuyerBook())
        book.policy = apply_to_buyer(book.policy, event)


def apply_to_shared(shared: SharedPolicy, event: PolicyEvent) -> SharedPolicy:
    if isinstance(event, ImportUseRulesSet):
        return replace(shared, use_rules=event)
    if isinstance(event, DeniedPartyListed | DeniedPartyDelisted):
        return replace(shared, denied_lists={**shared.denied_lists, event.policy_id: ref_of(event)})
    return shared


def apply_to_buyer(policy: BuyerPolicy, event: BuyerPolicyEvent) -> BuyerPolicy:
    ref = ref_of(event)
    match event:
        case ExportLicenceIssued():
            licence = Licence(event.licence_id, event.quantity, event.valid_from, event.valid_until, False, ref)
            return replace(policy, licences={**policy.licences, event.licence_id: licence})
        case ExportLicenceRevoked():
            known = policy.licences.get(event.licence_id)
            if known is None:
                return policy
            revoked = replace(known, revoked=True, ref=ref)
            return replace(policy, licences={**policy.licences, event.licence_id: revoked})
        case DeniedPartyListed():
            return replace(policy, denied_by={**policy.denied_by, event.policy_id: ref})
        case DeniedPartyDelisted():
            return replace(policy, denied_by={k: v for k, v in policy.denied_by.items() if k != event.policy_id})
        case ImporterAuthorised() | ImporterReinstated():
            return replace(policy, importer=Importer("authorised", ref))
        case ImporterSuspended():
            return replace(policy, importer=Importer("suspended", ref))
        case ImporterRevoked():
            return replace(policy, importer=Importer("revoked", ref))
        case TrancheQuotaSet():
            tranche = Tranche(event.tranche_id, event.quantity, event.opens_at, event.closes_at, ref)
            return replace(policy, tranches={**policy.tranches, event.tranche_id: tranche})
