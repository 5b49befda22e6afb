"""The checks of both gates: pure functions of an order, the policies in force and the decision time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.base import Gate, PolicyRef, Reason
from schemas.intake import OrderPlaced
from schemas.policy import ImportUseRulesSet
from services.approval.domain.state import BuyerPolicy, SharedPolicy

Verdict = Literal["deny", "hold"]
TEXT_LIMIT = 500


@dataclass(frozen=True)
class Finding:
    """A failed check: `hold` if the buyer or a government can still fix it, `deny` if not."""

    verdict: Verdict
    reason: Reason


@dataclass(frozen=True)
class Allowance:
    """The licence or tranche an approval would draw on, and the chips it has left."""

    source_id: str
    remaining: int


@dataclass(frozen=True)
class GateResult:
    findings: tuple[Finding, ...] = ()
    refs: tuple[PolicyRef, ...] = ()
    allowance: Allowance | None = None


def finding(verdict: Verdict, gate: Gate, code: str, message: str, field: str | None = None) -> Finding:
    # A held order is held again only if its reasons change: messages name no time, so a later look at an
    # unchanged situation gives equal reasons.
    return Finding(verdict, Reason(code=code, message=message[:TEXT_LIMIT], field=field, gate=gate))


def export_gate(policy: BuyerPolicy, shared: SharedPolicy, used: Mapping[str, int], at: datetime) -> GateResult:
    """US export: the buyer is not a denied party and holds a licence valid at `at` with chips left."""
    lists = ", ".join(sorted(policy.denied_by))
    party = (finding("deny", "us_export", "denied_party", f"buyer is named by the US denied-party list(s) {lists}"),)
    licence = licence_check(policy, used, at)
    return GateResult(
        findings=(party if policy.denied_by else ()) + licence.findings,
        refs=tuple(shared.denied_lists.values()) + licence.refs,
        allowance=licence.allowance,
    )


def licence_check(policy: BuyerPolicy, used: Mapping[str, int], at: datetime) -> GateResult:
    """The licence expiring first among those valid at `at` with chips left; none at all is a hold."""
    licences = sorted(policy.licences.values(), key=lambda licence: (licence.valid_until, licence.licence_id))
    refs = tuple(licence.ref for licence in licences)
    if not licences:
        return GateResult((finding("hold", "us_export", "no_export_licence", "buyer holds no US export licence"),))
    live = [licence for licence in licences if not licence.revoked]
    if not live:
        message = "every licence of the buyer is revoked"
        return GateResult((finding("deny", "us_export", "licence_revoked", message),), refs)
    valid = [licence for licence in live if licence.covers(at)]
    if not valid:
        message = "no licence of the buyer is valid at the time of decision"
        return GateResult((finding("hold", "us_export", "licence_not_in_window", message),), refs)
    for licence in valid:
        remaining = licence.quantity - used.get(licence.licence_id, 0)
        if remaining > 0:
            return GateResult((), (licence.ref,), Allowance(licence.licence_id, remaining))
    names = ", ".join(licence.licence_id for licence in valid)
    return GateResult((finding("deny", "us_export", "licence_exhausted", f"licences fully used: {names}"),), refs)


def import_gate(
    order: OrderPlaced,
    document_kinds: frozenset[str],
    policy: BuyerPolicy,
    shared: SharedPolicy,
    used: Mapping[str, int],
    at: datetime,
) -> GateResult:
    """China import: an authorised importer, quota left in an open tranche, and uses within the rules."""
    importer = importer_check(policy)
    tranche = tranche_check(policy, used, at)
    rules = shared.use_rules
    rules_ref = shared.use_rules_ref
    use_findings: tuple[Finding, ...]
    if rules is None:
        use_findings = (finding("hold", "cn_import", "no_use_rules", "China has published no import use rules yet"),)
    else:
        use_findings = use_rule_checks(order, document_kinds, rules)
    return GateResult(
        findings=importer.findings + tranche.findings + use_findings,
        refs=importer.refs + tranche.refs + ((rules_ref,) if rules_ref else ()),
        allowance=tranche.allowance,
    )


def importer_check(policy: BuyerPolicy) -> GateResult:
    importer = policy.importer
    if importer is None:
        message = "buyer is not (yet) an authorised importer"
        return GateResult((finding("hold", "cn_import", "importer_not_authorised", message),))
    refs = (importer.ref,)
    if importer.status == "suspended":
        message = "buyer's import authorisation is suspended"
        return GateResult((finding("hold", "cn_import", "importer_suspended", message),), refs)
    if importer.status == "revoked":
        message = "buyer's import authorisation is revoked"
        return GateResult((finding("deny", "cn_import", "importer_revoked", message),), refs)
    return GateResult((), refs)


def tranche_check(policy: BuyerPolicy, used: Mapping[str, int], at: datetime) -> GateResult:
    """The tranche closing first among those open at `at` with quota left; none open is a hold."""
    tranches = sorted(policy.tranches.values(), key=lambda tranche: (tranche.closes_at, tranche.tranche_id))
    open_ = [tranche for tranche in tranches if tranche.is_open(at)]
    if not open_:
        message = "no import tranche of the buyer is open at the time of decision"
        return GateResult((finding("hold", "cn_import", "no_open_tranche", message),), tuple(t.ref for t in tranches))
    for tranche in open_:
        remaining = tranche.quantity - used.get(tranche.tranche_id, 0)
        if remaining > 0:
            return GateResult((), (tranche.ref,), Allowance(tranche.tranche_id, remaining))
    names = ", ".join(tranche.tranche_id for tranche in open_)
    refs = tuple(tranche.ref for tranche in open_)
    return GateResult((finding("deny", "cn_import", "quota_exhausted", f"import quota used up in: {names}"),), refs)


def use_rule_checks(
    order: OrderPlaced, document_kinds: frozenset[str], rules: ImportUseRulesSet
) -> tuple[Finding, ...]:
    """Declared uses, documents, inference share and domestic-chip commitment against China's rules."""
    found: list[Finding] = []
    unnecessary = [use.use for use in order.declared_uses if use.use not in rules.necessary_uses]
    if unnecessary:
        message = f"declared uses not deemed necessary: {', '.join(unnecessary)}"
        found.append(finding("deny", "cn_import", "use_not_necessary", message, "declared_uses"))
    missing = sorted(set(rules.required_document_kinds) - document_kinds)
    if missing:
        message = f"required documents missing: {', '.join(missing)}"
        found.append(finding("hold", "cn_import", "document_missing", message, "documents"))
    inference = sum(use.share_pct for use in order.declared_uses if use.use == rules.inference_use)
    if inference > rules.max_inference_share_pct:
        message = f"{rules.inference_use} share {inference}% exceeds the maximum of {rules.max_inference_share_pct}%"
        found.append(finding("deny", "cn_import", "inference_share_too_high", message, "declared_uses"))
    committed = order.domestic_commitment.quantity if order.domestic_commitment else 0
    # Whole numbers only: committed / quantity >= pct / 100, without rounding.
    if committed * 100 < rules.min_domestic_commitment_pct * order.quantity:
        message = (
            f"domestic-chip commitment of {committed} is below {rules.min_domestic_commitment_pct}% "
            f"of the {order.quantity} H200 ordered"
        )
        found.append(finding("deny", "cn_import", "domestic_commitment_too_low", message, "domestic_commitment"))
    return tuple(found)
