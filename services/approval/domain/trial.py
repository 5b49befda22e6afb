"""A decision in progress: the policies as the input leaves them and the chips its earlier events moved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from schemas.approval import ApprovalReleased
from schemas.base import Message, PolicyRef, Reason
from schemas.intake import SupportingDocument
from services.approval.domain.state import ApprovalState, BuyerPolicy, OrderRecord, SharedPolicy, Usage
from services.approval.domain.verdict import Cause, Evaluation, decision, decision_fields, evaluate

ReleaseWhy = Literal["cancelled", "revoked", "expired", "closed", "unfilled"]


def kinds_of(documents: Iterable[SupportingDocument]) -> frozenset[str]:
    return frozenset(document.kind for document in documents)


@dataclass
class Trial:
    """What decide works on. Policies and usage are copies: the state changes only when evolve folds the events."""

    state: ApprovalState
    cause: Cause
    shared: SharedPolicy
    policies: dict[str, BuyerPolicy] = field(default_factory=dict)
    usages: dict[str, Usage] = field(default_factory=dict)
    closing: set[UUID] = field(default_factory=set)
    """Orders this decision ends whose licence and quota stay reserved until the order book closes them."""
    released: set[UUID] = field(default_factory=set)
    """Ended orders whose licence and quota use this decision gives back: no longer pending."""

    def policy(self, buyer_id: str) -> BuyerPolicy:
        return self.policies.get(buyer_id) or self.state.book_of(buyer_id).policy

    def usage(self, buyer_id: str) -> Usage:
        if buyer_id not in self.usages:
            self.usages[buyer_id] = self.state.book_of(buyer_id).usage.copy()
        return self.usages[buyer_id]

    def grant_refs(self, order: OrderRecord) -> tuple[PolicyRef, ...]:
        """The current revisions of the licence and the tranche an approval draws on."""
        policy, grant = self.policy(order.buyer_id), order.grant
        if grant is None:
            return ()
        licence, tranche = policy.licences.get(grant.licence_id), policy.tranches.get(grant.tranche_id)
        return tuple(item.ref for item in (licence, tranche) if item is not None)

    def reconsider(self, order: OrderRecord, document_kinds: frozenset[str] | None = None) -> Message | None:
        """Decide on an order now; None if it stays held for the very same reasons."""
        kinds = order.document_kinds if document_kinds is None else document_kinds
        buyer = order.buyer_id
        found = evaluate(order.placed, kinds, self.policy(buyer), self.shared, self.usage(buyer), self.cause.at)
        if found.outcome == "deny" and self.release_pending(buyer) and all(r.code in EXHAUSTED for r in found.reasons):
            found = awaiting_release(found)
        if found.outcome == "hold" and found.reasons == order.held_reasons:
            return None
        if found.outcome == "approve":
            self.usage(buyer).commit(found.licence_id, found.tranche_id, found.quantity)
        return decision(order.placed, found, self.cause)

    def reconsider_held(self, buyer_id: str | None) -> list[Message]:
        """Every held order of a buyer (of all buyers for None), oldest hold first."""
        decided = (self.reconsider(order) for order in self.state.held_orders(buyer_id))
        return [event for event in decided if event is not None]

    def release_pending(self, buyer_id: str) -> bool:
        """Some ended order of the buyer still reserves licence or quota that the order book may give back."""
        ended = (
            o for o in self.state.book_of(buyer_id).orders.values() if o.awaiting_close or o.order_id in self.closing
        )
        return any(order.order_id not in self.released for order in ended)

    def release(self, order: OrderRecord, why: ReleaseWhy, kept: int) -> ApprovalReleased:
        """Give back the licence and quota use of an ended order, less the `kept` chips that shipped."""
        grant = order.grant
        if grant is None:
            raise ValueError(f"order {order.order_id} holds no approval to release")
        unused = max(grant.quantity - kept, 0)
        self.usage(order.buyer_id).release(grant.licence_id, grant.tranche_id, unused)
        self.released.add(order.order_id)
        return ApprovalReleased(
            **decision_fields(order.placed, self.grant_refs(order), self.cause),
            licence_id=grant.licence_id,
            tranche_id=grant.tranche_id,
            quantity=unused,
            why=why,
        )


EXHAUSTED = frozenset({"licence_exhausted", "quota_exhausted"})
"""Denials that a pending release may lift: the order is held instead, and decided again when it comes."""


def awaiting_release(found: Evaluation) -> Evaluation:
    text = "licence or quota used up, but an ended order of the buyer has not yet given back what it did not ship"
    wait = Reason(code="awaiting_release", message=text, field="quantity")
    return Evaluation("hold", (*found.reasons, wait), found.refs)
