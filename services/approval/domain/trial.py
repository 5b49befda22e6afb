"""A decision in progress: the policies as the input leaves them and the chips its earlier events moved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from schemas.approval import ApprovalReleased
from schemas.base import Message, PolicyRef
from schemas.intake import SupportingDocument
from services.approval.domain.state import ApprovalState, BuyerPolicy, OrderRecord, SharedPolicy, Usage
from services.approval.domain.verdict import Cause, decision, decision_fields, decision_time, evaluate


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
        at = decision_time(order.placed, self.cause)
        found = evaluate(order.placed, kinds, self.policy(buyer), self.shared, self.usage(buyer), at)
        if found.outcome == "hold" and found.reasons == order.held_reasons:
            return None
        if found.outcome == "approve":
            self.usage(buyer).commit(found.licence_id, found.tranche_id, found.quantity)
        return decision(order.placed, found, self.cause)

    def reconsider_held(self, buyer_id: str | None) -> list[Message]:
        """Every held order of a buyer (of all buyers for None), oldest hold first."""
        decided = (self.reconsider(order) for order in self.state.held_orders(buyer_id))
        return [event for event in decided if event is not None]

    def release(
        self, order: OrderRecord, why: Literal["cancelled", "revoked"], refs: tuple[PolicyRef, ...]
    ) -> ApprovalReleased:
        """Give back the licence and quota use of an open approval."""
        grant = order.grant
        if grant is None:
            raise ValueError(f"order {order.order_id} holds no approval to release")
        self.usage(order.buyer_id).release(grant.licence_id, grant.tranche_id, grant.quantity)
        return ApprovalReleased(
            **decision_fields(order.placed, refs + self.grant_refs(order), self.cause),
            licence_id=grant.licence_id,
            tranche_id=grant.tranche_id,
            quantity=grant.quantity,
            why=why,
        )
