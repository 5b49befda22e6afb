"""Invariants of the approval core under any sequence of policies, orders and clock ticks (hypothesis).

An oracle, written apart from the core, follows the partition clock, the policies in force (newer revisions only,
each from its effective_at) and the open approvals stated by the core's own events; after every input the core
must agree with the law.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import builders_approval as build
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from schemas.allocation import OrderClosed
from schemas.approval import (
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalReleased,
    ApprovalRevoked,
    Decision,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.base import Message
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderPlaced
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
from services.approval import domain as approval
from services.common.decider import fold, step

BUYERS = ("bytedance", "baidu")
WINDOWS = ((-100_000, 100_000), (0, 30), (20, 60), (50, 500))
SOON = ((-100_000, 30), (-100_000, 80))
USES = (
    {"ai_research": 100},
    {"ai_research": 70, "inference": 30},
    {"inference": 100},
    {"ai_research": 50, "gaming": 50},
)
DOCUMENTS = ((), ("end_use_statement",), ("end_use_statement", "training_plan"))
IMPORTER = {
    "authorised": build.importer_authorised,
    "suspended": build.importer_suspended,
    "reinstated": build.importer_reinstated,
    "revoked": build.importer_revoked,
}

buyer = st.sampled_from(BUYERS)
window = st.sampled_from(WINDOWS)
place = st.tuples(
    st.just("place"),
    buyer,
    st.integers(1, 120),
    st.sampled_from(USES),
    st.sampled_from(DOCUMENTS),
    st.sampled_from((0, 20, 60)),
)
compliant_place = st.tuples(
    st.just("place"), buyer, st.integers(1, 120), st.sampled_from(USES[:2]), st.just(DOCUMENTS[2]), st.just(60)
)
policy_actions = st.one_of(
    st.tuples(st.just("licence"), buyer, st.sampled_from(("L1", "L2")), st.integers(1, 200), window, st.booleans()),
    st.tuples(st.just("revoke_licence"), buyer, st.sampled_from(("L1", "L2")), st.booleans()),
    st.tuples(st.just("importer"), buyer, st.sampled_from(tuple(IMPORTER)), st.booleans()),
    st.tuples(st.just("quota"), buyer, st.sampled_from(("T1", "T2")), st.integers(0, 200), window, st.booleans()),
    st.tuples(st.just("denied"), buyer, st.booleans(), st.booleans(), st.sampled_from(("us-denied", "us-entity"))),
)
single_actions = st.one_of(
    place,
    compliant_place,
    compliant_place,
    st.tuples(st.just("place_again"), st.integers(0, 50)),
    st.tuples(st.just("documents"), st.integers(0, 50), st.sampled_from(DOCUMENTS[1:])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    # The order book closing an order (as it does once its recalls are answered), keeping some chips that shipped.
    st.tuples(
        st.just("close"),
        st.integers(0, 50),
        st.integers(0, 150),
        st.sampled_from(("cancelled", "revoked", "expired", "unfilled")),
    ),
    st.tuples(st.just("licence"), buyer, st.sampled_from(("L1", "L2")), st.integers(1, 200), window, st.booleans()),
    # Amendments of the licence and the tranche the cleared buyers draw on, often below what is approved.
    st.tuples(st.just("licence"), buyer, st.just("L1"), st.integers(1, 80), st.just(WINDOWS[0]), st.just(False)),
    st.tuples(st.just("quota"), buyer, st.just("T1"), st.integers(0, 80), st.just(WINDOWS[0]), st.just(False)),
    # The licence the cleared buyers draw on, issued again to end soon (its approvals expire as the clock passes).
    st.tuples(st.just("licence"), buyer, st.just("L1"), st.integers(20, 200), st.sampled_from(SOON), st.just(False)),
    st.tuples(st.just("revoke_licence"), buyer, st.sampled_from(("L1", "L2")), st.booleans()),
    st.tuples(st.just("denied"), buyer, st.booleans(), st.booleans(), st.sampled_from(("us-denied", "us-entity"))),
    st.tuples(st.just("importer"), buyer, st.sampled_from(tuple(IMPORTER)), st.booleans()),
    st.tuples(st.just("quota"), buyer, st.sampled_from(("T1", "T2")), st.integers(0, 200), window, st.booleans()),
    st.tuples(
        st.just("rules"),
        st.sampled_from(DOCUMENTS),
        st.sampled_from((30, 60)),
        st.sampled_from((0, 20, 50)),
        st.booleans(),
    ),
    st.tuples(st.just("repeat"), st.integers(0, 100)),
    # Time passing: a tick some minutes ahead (read from an inbox partition or not), and policies effective later.
    st.tuples(st.just("tick"), st.sampled_from((0, 5, 20, 60)), st.booleans()),
    st.tuples(st.just("tick"), st.sampled_from((0, 5, 20, 60)), st.booleans()),
    st.tuples(st.just("later"), st.sampled_from((1, 10, 40)), policy_actions),
)


def clearing(who: str, licence: int = 100, quota: int = 100) -> list[tuple[Any, ...]]:
    """The US licence, the import authorisation and the tranche quota a buyer needs, all in force now."""
    return [
        ("licence", who, "L1", licence, WINDOWS[0], False),
        ("importer", who, "authorised", False),
        ("quota", who, "T1", quota, WINDOWS[0], False),
    ]


actions = st.one_of(single_actions.map(lambda action: [action]), buyer.map(clearing))


@st.composite
def scripts(draw: st.DrawFn, max_size: int = 40) -> list[tuple[Any, ...]]:
    """Random actions, after a start in which some buyers are cleared by both governments (else few approvals)."""
    cleared = draw(st.lists(buyer, unique=True, min_size=1))
    start: list[tuple[Any, ...]] = [("rules", DOCUMENTS[1], 60, 20, False)]
    for who in cleared:
        start += clearing(who, draw(st.integers(20, 300)), draw(st.integers(20, 300)))
    return start + [action for group in draw(st.lists(actions, min_size=5, max_size=max_size)) for action in group]


@dataclass
class Script:
    """Turns actions into inbox envelopes, one minute apart, with revisions that grow (or, if stale, do not)."""

    revisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    orders: list[tuple[str, str]] = field(default_factory=list)
    sent: list[Envelope[Any]] = field(default_factory=list)
    ahead: int = 0
    """Minutes the ticks have moved the clock on beyond one a step."""

    def revision(self, policy_id: str, stale: bool) -> int:
        if not (stale and self.revisions[policy_id]):
            self.revisions[policy_id] += 1
        return self.revisions[policy_id]

    def envelope(self, action: tuple[Any, ...], minute: int) -> Envelope[Any] | None:
        kind, *args = action
        if kind == "place":
            who, quantity, uses, documents, domestic_pct = args
            ref = f"PO-{len(self.orders)}"
            self.orders.append((who, ref))
            return build.order_placed(
                who,
                ref,
                quantity,
                minute=minute,
                uses=uses,
                documents=documents,
                domestic=quantity * domestic_pct // 100,
            )
        if kind in ("place_again", "documents", "cancel", "close"):
            if not self.orders:
                return None
            who, ref = self.orders[args[0] % len(self.orders)]
            if kind == "close":
                return build.order_closed(who, ref, 1, args[1], args[2], minute=minute)
            if kind == "place_again":
                return build.order_placed(who, ref, 10, minute=minute)
            if kind == "documents":
                return build.documents_added(who, ref, args[1], minute=minute)
            return build.order_cancelled(who, ref, minute=minute)
        if kind == "repeat":
            return self.sent[args[0] % len(self.sent)] if self.sent else None
        if kind == "tick":
            jump, from_inbox = args
            self.ahead += jump
            return build.tick(minute + jump, partition=2 if from_inbox else None)
        if kind == "later":
            delay, (inner, *inner_args) = args
            return build.effective_at(self.policy(inner, inner_args, minute), minute + delay)
        return self.policy(kind, args, minute)

    def policy(self, kind: str, args: list[Any], minute: int) -> Envelope[Any]:
        if kind == "licence":
            who, name, quantity, (start, end), is_stale = args
            rev = self.revision(f"us-licence/{who}-{name}", is_stale)
            return build.licence_issued(
                who,
                quantity,
                licence=f"{who}-{name}",
                revision=rev,
                minute=minute,
                valid_from=build.at(start),
                valid_until=build.at(end),
            )
        if kind == "revoke_licence":
            who, name, is_stale = args
            rev = self.revision(f"us-licence/{who}-{name}", is_stale)
            return build.licence_revoked(who, licence=f"{who}-{name}", revision=rev, minute=minute)
        if kind == "denied":
            who, listed, is_stale, list_id = args
            maker = build.denied_party_listed if listed else build.denied_party_delisted
            return maker(who, revision=self.revision(list_id, is_stale), minute=minute, list_id=list_id)
        if kind == "importer":
            who, status, is_stale = args
            return IMPORTER[status](who, revision=self.revision(f"cn-importer/{who}", is_stale), minute=minute)
        if kind == "quota":
            who, tranche, quantity, (start, end), is_stale = args
            rev = self.revision(f"cn-quota/{tranche}/{who}", is_stale)
            return build.tranche_quota_set(
                who,
                quantity,
                tranche=tranche,
                revision=rev,
                minute=minute,
                opens_at=build.at(start),
                closes_at=build.at(end),
            )
        documents, max_inference, min_domestic, is_stale = args
        return build.use_rules_set(
            revision=self.revision(build.USE_RULES, is_stale),
            minute=minute,
            documents=documents,
            max_inference=max_inference,
            min_domestic=min_domestic,
        )

    def inputs(self, script: list[tuple[Any, ...]]) -> list[Envelope[Any]]:
        for step_number, action in enumerate(script):
            made = self.envelope(action, step_number + self.ahead)
            if made is not None:
                self.sent.append(made)
        return self.sent


@dataclass
class Law:
    """The policies in force as the governments stated them, and the approvals the core says are open."""

    now: datetime | None = None
    """The partition clock: the latest tick or input time seen."""
    revisions: dict[str, int] = field(default_factory=dict)
    """The last revision seen of each policy (in force or pending)."""
    in_force: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[datetime, int, PolicyEvent]] = field(default_factory=list)
    arrivals: int = 0
    passed: datetime | None = None
    """The latest ApprovalsPassed marker: nothing decided afterwards may be dated before it."""
    denied: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Buyer -> the denied-party lists naming it: a buyer is denied while any list does."""
    importer: dict[str, str] = field(default_factory=dict)
    licences: dict[tuple[str, str], ExportLicenceIssued] = field(default_factory=dict)
    revoked: set[tuple[str, str]] = field(default_factory=set)
    tranches: dict[tuple[str, str], TrancheQuotaSet] = field(default_factory=dict)
    rules: bool = False
    open: dict[UUID, OrderApproved] = field(default_factory=dict)
    """Approvals whose licence and quota use is not given back: open, or ended and waiting for the book's close."""
    ended: set[UUID] = field(default_factory=set)
    """Open approvals that were revoked or cancelled: they take no more chips, but reserve until closed."""
    kept: list[tuple[OrderApproved, int]] = field(default_factory=list)
    """Approvals given back, with the chips they kept (shipped): those count against licence and quota forever."""
    decided: set[UUID] = field(default_factory=set)
    cancelled: set[UUID] = field(default_factory=set)
    placed: set[UUID] = field(default_factory=set)

    def receive(self, event: PolicyEvent) -> bool:
        """A policy revision seen: False if stale; in force at once or, if effective later, pending."""
        if event.revision <= self.revisions.get(event.policy_id, 0):
            return False
        self.revisions[event.policy_id] = event.revision
        assert self.now is not None
        if event.effective_at > self.now:
            self.pending.append((event.effective_at, self.arrivals, event))
            self.arrivals += 1
            self.pending.sort(key=lambda item: item[:2])
        else:
            self.apply(event)
        return True

    def advance(self, message: Envelope[Any]) -> tuple[datetime, bool]:
        """Move the clock to the message's time and bring the pending policies it reaches into force: the new time,
        and whether the move reached a time at which something may fall due."""
        times = [message.occurred_at, *([self.now] if self.now else [])]
        if isinstance(message.payload, ClockTicked):
            times.append(message.payload.at)
        before, self.now = self.now, max(times)
        passes = self.passes_a_boundary(before, self.now)
        while self.pending and self.pending[0][0] <= self.now:
            self.apply(self.pending.pop(0)[2])
        return self.now, passes

    def passes_a_boundary(self, before: datetime | None, now: datetime) -> bool:
        """Whether moving the clock from `before` to `now` reaches anything that may cause decisions."""
        if before is None:
            return False
        times = [pending[0] for pending in self.pending]
        times += [t for licence in self.licences.values() for t in (licence.valid_from, licence.valid_until)]
        times += [tranche.opens_at for tranche in self.tranches.values()]
        return any(before < time <= now for time in times)

    def apply(self, event: PolicyEvent) -> None:
        if event.revision <= self.in_force.get(event.policy_id, 0):
            return  # overtaken by a later revision that took effect first
        self.in_force[event.policy_id] = event.revision
        match event:
            case DeniedPartyListed():
                self.denied[event.buyer_id].add(event.policy_id)
            case DeniedPartyDelisted():
                self.denied[event.buyer_id].discard(event.policy_id)
            case ImporterAuthorised() | ImporterReinstated():
                self.importer[event.buyer_id] = "authorised"
            case ImporterSuspended():
                self.importer[event.buyer_id] = "suspended"
            case ImporterRevoked():
                self.importer[event.buyer_id] = "revoked"
            case ExportLicenceIssued():
                self.licences[(event.buyer_id, event.licence_id)] = event
                self.revoked.discard((event.buyer_id, event.licence_id))
            case ExportLicenceRevoked():
                self.revoked.add((event.buyer_id, event.licence_id))
            case TrancheQuotaSet():
                self.tranches[(event.buyer_id, event.tranche_id)] = event
            case ImportUseRulesSet():
                self.rules = True

    def knows_anything_about(self, who: str) -> bool:
        return (
            self.rules
            or any(policy_id.startswith("us-denied") for policy_id in self.in_force)
            or any(who in key for key in (*self.licences, *self.tranches, *((b, "") for b in self.importer)))
        )

    def check_approval(self, approved: OrderApproved, at: datetime) -> None:
        who = approved.buyer_id
        assert not self.denied[who], "approved a party named by a denied-party list"
        assert self.importer.get(who) == "authorised", "approved a buyer that is not an authorised importer"
        licence = self.licences[(who, approved.licence_id)]
        assert (who, approved.licence_id) not in self.revoked, "approved under a revoked licence"
        assert licence.valid_from <= at < licence.valid_until, "approved under a licence not valid at the time"
        tranche = self.tranches[(who, approved.tranche_id)]
        assert tranche.opens_at <= at < tranche.closes_at, "approved in a tranche that is not open"
        assert 0 < approved.approved_quantity <= approved.requested_quantity
        assert approved.order_id not in self.cancelled, "approved a cancelled order"
        assert approved.order_id not in self.decided, "approved an order already decided"
        held = self.holding()
        for key, limit in (
            ((who, approved.licence_id), licence.quantity),
            ((who, approved.tranche_id), tranche.quantity),
        ):
            used = held.get(key, 0)
            assert used + approved.approved_quantity <= limit, f"approved {approved.approved_quantity} over {key}"

    def holding(self) -> dict[tuple[str, str], int]:
        """Chips counted against each (buyer, licence) and (buyer, tranche): every approval not given back, and
        what given-back approvals kept (it shipped)."""
        held: dict[tuple[str, str], int] = defaultdict(int)
        for approved, chips in [(a, a.approved_quantity) for a in self.open.values()] + self.kept:
            held[(approved.buyer_id, approved.licence_id)] += chips
            held[(approved.buyer_id, approved.tranche_id)] += chips
        return held

    def check_validity(self) -> None:
        """No approval in force outlives the licence it draws on (it expires when the clock passes valid_until)."""
        assert self.now is not None
        for approved in self.open.values():
            if approved.order_id not in self.ended:
                licence = self.licences[(approved.buyer_id, approved.licence_id)]
                assert self.now < licence.valid_until, "an approval outlived its licence"

    def check_limits(self) -> None:
        by_licence: dict[tuple[str, str], int] = defaultdict(int)
        by_tranche: dict[tuple[str, str], int] = defaultdict(int)
        # Approvals still in force must fit the latest limits (a cut revokes the newest until they do).
        for approved, chips in [(a, a.approved_quantity) for a in self.open.values() if a.order_id not in self.ended]:
            by_licence[(approved.buyer_id, approved.licence_id)] += chips
            by_tranche[(approved.buyer_id, approved.tranche_id)] += chips
        for key, used in by_licence.items():
            assert used <= self.licences[key].quantity, f"licence {key} over-used: {used}"
        for key, used in by_tranche.items():
            assert used <= self.tranches[key].quantity, f"tranche {key} over-used: {used}"


def observe(law: Law, message: Envelope[Any], outputs: list[Message], repeated: bool) -> None:
    payload = message.payload
    if repeated:
        assert outputs == [], "a repeated input decided something"
        return
    now, passes = law.advance(message)
    # Decisions that fall due as the clock passes a time come first, in the same step: strict checks on what the
    # input itself decided hold only for a step that reaches no such time.
    quiet = not passes
    # What fell due is decided before the input's own policy takes effect.
    due_in_force, due_licences = dict(law.in_force), dict(law.licences)
    if isinstance(payload, PolicyEvent) and not law.receive(payload) and quiet:
        assert outputs == [], "a stale policy revision decided something"
    markers = [event for event in outputs if isinstance(event, ApprovalsPassed)]
    if markers:
        assert isinstance(payload, ClockTicked) and message.arrival is not None, "a marker not after a tick"
        assert [(m.lane, m.at) for m in markers] == [(lane, now) for lane in range(3)]
        assert outputs[-3:] == markers, "a marker written before a decision of the same step"
    decisions = [event for event in outputs if not isinstance(event, ApprovalsPassed)]
    if isinstance(payload, OrderPlaced):
        new = payload.order_id not in law.placed and payload.order_id not in law.cancelled
        about = [e for e in decisions if isinstance(e, Decision) and e.order_id == payload.order_id]
        if new or quiet:
            assert len(about) == (1 if new else 0)
        law.placed.add(payload.order_id)
    was_in_force = isinstance(payload, OrderCancelled) and payload.order_id in law.open
    was_in_force = was_in_force and payload.order_id not in law.ended
    for event in decisions:
        assert isinstance(event, Decision)
        assert (event.cause_event_id, event.decided_at) == (message.id, now), "not decided at the partition clock"
        assert law.passed is None or event.decided_at >= law.passed, "decided before a marker already written"
        if law.knows_anything_about(event.buyer_id) or not isinstance(event, OrderHeld):
            assert event.policy_refs, f"{event.TYPE} cites no policy"
        for ref in event.policy_refs:
            in_force = {law.in_force.get(ref.policy_id), due_in_force.get(ref.policy_id)}
            assert ref.revision in in_force, f"{event.TYPE} cites {ref}, not the revision in force ({in_force})"
        if isinstance(event, OrderApproved):
            law.check_approval(event, now)
            law.open[event.order_id] = event
        if isinstance(event, ApprovalReleased):
            assert isinstance(payload, OrderClosed), "licence or quota given back before the order book closed it"
            approved = law.open.pop(event.order_id)
            assert event.quantity == max(approved.approved_quantity - payload.kept_quantity, 0)
            law.kept.append((approved, approved.approved_quantity - event.quantity))
            if payload.kept_quantity < approved.approved_quantity and payload.why != "unfilled":
                assert event.order_id in law.ended, "an approval in force was closed before it was filled"
        if isinstance(event, ApprovalExpired):
            key = (event.buyer_id, event.licence_id)
            ended = [licence.valid_until <= now for licence in (law.licences[key], due_licences[key])]
            assert any(ended), "an approval expired while its licence was valid"
            assert event.order_id in law.open and event.order_id not in law.ended, "expired what was not in force"
        if isinstance(event, OrderApproved | OrderDenied):
            law.decided.add(event.order_id)
        if isinstance(event, ApprovalRevoked | ApprovalCancelled | ApprovalExpired):
            law.ended.add(event.order_id)
    if isinstance(payload, OrderCancelled):
        law.cancelled.add(payload.order_id)
        if was_in_force:
            # by its ApprovalCancelled, or by what fell due in the same step (a revocation, an expiry)
            assert payload.order_id in law.ended, "a cancelled approval was not ended"
    if markers:
        law.passed = now
    law.check_validity()
    law.check_limits()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_no_buyer_exceeds_its_licence_or_quota_and_every_decision_is_lawful_and_traced(script: list[Any]) -> None:
    inputs = Script().inputs(script)
    state, law, seen = approval.initial_state(), Law(), set()
    decided: set[str] = set()
    for message in inputs:
        state, outputs = step(approval, state, message)
        observe(law, message, [output.payload for output in outputs], message.id in seen)
        seen.add(message.id)
        decided.update(output.type for output in outputs)
    for kind in sorted(decided):
        note(kind)


@settings(max_examples=100, deadline=None)
@given(scripts(max_size=30))
def test_replaying_the_same_inputs_decides_exactly_the_same_events(script: list[Any]) -> None:
    inputs = Script().inputs(script)
    _, first = fold(approval, inputs)
    _, second = fold(approval, inputs)
    assert first == second


@settings(max_examples=100, deadline=None)
@given(scripts(max_size=30))
def test_every_input_delivered_twice_decides_the_same_as_once(script: list[Any]) -> None:
    inputs = Script().inputs(script)
    _, once = fold(approval, inputs)
    _, twice = fold(approval, [message for message in inputs for _ in (1, 2)])
    assert once == twice


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_forgetting_orders_done_with_decides_exactly_what_remembering_them_would(script: list[Any]) -> None:
    # The core drops the record of an order once it is done with (issue #9: state that grows with what is open, not
    # with history). The same core that never forgets is the reference: every decision, in order, must be the same.
    inputs = Script().inputs(script)
    forgetting, remembering = approval.initial_state(), approval.initial_state()
    for message in inputs:
        forgetting, forgetful_outputs = step(approval, forgetting, message)
        remembering.done_with.clear()  # what would be forgotten is kept
        remembering, outputs = step(approval, remembering, message)
        assert forgetful_outputs == outputs, f"forgetting changed what {message.type} decided"
    forgetting.forget_done()
    remembered = {order_id: order for book in remembering.buyers.values() for order_id, order in book.orders.items()}
    kept = {order_id: order for book in forgetting.buyers.values() for order_id, order in book.orders.items()}
    assert all(remembered[order_id] == order for order_id, order in kept.items()), "a kept record differs"
    dropped = set(remembered) - set(kept)
    assert all(remembered[order_id].is_done for order_id in dropped), "an order not done with was dropped"
    assert dropped <= set(forgetting.forgotten), "a dropped order is not remembered as forgotten"
    note(f"orders forgotten: {'some' if dropped else 'none'}")
