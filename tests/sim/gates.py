"""The two gates as domain.md states them, applied to an approval against the policies its service had seen and
that were in force when it decided: the approval inbox up to the input the approval was decided on, less the
policy events whose effective_at is after its decided_at (docs/time.md: a policy takes effect when the clock
reaches its effective_at; until then it changes nothing). Any failed condition is a violation.

US export: a licence in force (its latest revision is an issue, not a revocation) whose window covers the
decision, and the buyer on no denied-party list (each list is its own policy: delisted from one list, a buyer
on another is still denied). China import: an authorised importer, an open tranche, uses deemed necessary,
required documents on file, inference share and domestic commitment within the rules in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.envelope import Envelope


def latest_by_policy(events: Iterable[Any]) -> dict[str, Any]:
    """The latest revision of every policy id among `events` (a stale revision never overrides a newer one)."""
    found: dict[str, Any] = {}
    for event in events:
        if event.policy_id not in found or event.revision > found[event.policy_id].revision:
            found[event.policy_id] = event
    return found


def in_force(seen: list[Envelope[Any]], at: Any) -> list[Any]:
    """The payloads of `seen`, less the policy events not yet in force at `at`."""
    return [e.payload for e in seen if getattr(e.payload, "effective_at", None) is None or e.payload.effective_at <= at]


def gate_failures(approved: Any, seen: list[Envelope[Any]]) -> list[str]:
    """What was wrong with approving `approved` (an OrderApproved), given the messages its service had seen."""
    buyer, at = approved.buyer_id, approved.decided_at
    payloads = in_force(seen, at)
    mine = [p for p in payloads if getattr(p, "buyer_id", None) == buyer]
    failures = []
    denied = latest_by_policy(p for p in mine if p.TYPE in ("DeniedPartyListed", "DeniedPartyDelisted"))
    on_lists = sorted(policy for policy, event in denied.items() if event.TYPE == "DeniedPartyListed")
    if on_lists:
        failures.append(f"buyer {buyer} is on the denied-party list(s) {', '.join(on_lists)}")
    importer = [p for p in mine if p.TYPE.startswith("Importer")]
    latest = max(importer, key=lambda p: p.revision) if importer else None
    if latest is None or latest.TYPE not in ("ImporterAuthorised", "ImporterReinstated"):
        failures.append(f"importer {buyer} not authorised: {latest.TYPE if latest else 'never authorised'}")
    licence = latest_by_policy(p for p in mine if getattr(p, "licence_id", None) == approved.licence_id)
    issued = max(licence.values(), key=lambda p: p.revision, default=None)
    if issued is None or issued.TYPE != "ExportLicenceIssued":
        failures.append(f"licence {approved.licence_id} not in force: {issued.TYPE if issued else 'never issued'}")
    elif not issued.valid_from <= at < issued.valid_until:
        failures.append(f"licence {approved.licence_id} not valid at {at:%m-%d %H:%M}")
    tranche = [p for p in mine if p.TYPE == "TrancheQuotaSet" and p.tranche_id == approved.tranche_id]
    quota = max(tranche, key=lambda p: p.revision, default=None)
    if quota is None or not quota.opens_at <= at < quota.closes_at:
        failures.append(f"tranche {approved.tranche_id} not open at {at:%m-%d %H:%M}")
    return failures + _use_rule_failures(approved, payloads)


def _use_rule_failures(approved: Any, payloads: list[Any]) -> list[str]:
    rules = max((p for p in payloads if p.TYPE == "ImportUseRulesSet"), key=lambda p: p.revision, default=None)
    placed = next((p for p in payloads if p.TYPE == "OrderPlaced" and p.order_id == approved.order_id), None)
    if rules is None or placed is None:
        return [f"approved without {'use rules' if rules is None else 'the order'} in view"]
    failures = []
    uses = {use.use: use.share_pct for use in placed.declared_uses}
    if set(uses) - set(rules.necessary_uses):
        failures.append(f"uses not deemed necessary: {sorted(set(uses) - set(rules.necessary_uses))}")
    kinds = {d.kind for d in placed.documents}
    for p in payloads:
        if p.TYPE == "OrderDocumentsAdded" and p.order_id == approved.order_id:
            kinds |= {d.kind for d in p.documents}
    if set(rules.required_document_kinds) - kinds:
        failures.append(f"documents missing: {sorted(set(rules.required_document_kinds) - kinds)}")
    if uses.get(rules.inference_use, 0) > rules.max_inference_share_pct:
        failures.append("inference share above the maximum")
    committed = placed.domestic_commitment.quantity if placed.domestic_commitment else 0
    if committed * 100 < rules.min_domestic_commitment_pct * placed.quantity:
        failures.append("domestic commitment below the minimum")
    if approved.approved_quantity > placed.quantity:
        failures.append(f"approved {approved.approved_quantity} of {placed.quantity} requested")
    return failures


def policy_quantity(seen: list[Envelope[Any]], kind: str, buyer: str, field: str, value: str, at: Any) -> int | None:
    """The quantity of a licence or a tranche quota in its latest revision among `seen` in force at `at`."""
    found = [
        payload
        for payload in in_force(seen, at)
        if kind == payload.TYPE and payload.buyer_id == buyer and getattr(payload, field) == value
    ]
    latest = max(found, key=lambda p: p.revision, default=None)
    return None if latest is None else int(latest.quantity)
