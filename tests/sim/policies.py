"""The two governments and the operators, as the simulator plays them: versioned policy events, each policy's
revision growing by one. Licences, quotas and batches are of the same order as the orders (tens of chips).

Time (docs/time.md): a change may take effect later than it is sent (or, rarely, be dated an hour back); some
licences and tranches open after they are issued and many close within a run (hours to two days); the pool's
allocation rule is published from the start and may close orders left unfilled for some hours. A `timely`
authority (the named scenarios) sends every policy in force at once, with windows that outlast the story.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from random import Random

from schemas.policy import (
    AllocationPolicySet,
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

BUYERS = ("bytedance", "alibaba", "tencent")
NAMES = {"bytedance": "ByteDance Ltd.", "alibaba": "Alibaba Group", "tencent": "Tencent Holdings"}
POOL = "h200"
DENIED_LISTS = ("us-denied-parties", "us-entity-list")
"""Two lists a buyer can be on at once: delisting from one leaves it denied by the other."""
TRANCHE = "2026-T1"
LATER_S = (0, 0, 0, 0, 0, 0, 0, 600, 3600, 4 * 3600, 86_400, -3600)
"""How long after it is sent a policy change takes effect (seconds; negative: dated back)."""
WINDOW_H = (8, 24, 48, 720, 1440, 1440, 1440, 1440)
"""Hours a licence or tranche window lasts from its issue (a run spans two or three days)."""
CLOSE_UNFILLED_S = (None, None, None, 6 * 3600, 86_400, 2 * 86_400)
BIS, MOFCOM, OPS = "US Commerce, BIS", "MOFCOM", "h200 operations"


def licence_of(buyer: str) -> str:
    return f"BIS-H200-{buyer.upper()}"


class Authorities:
    def __init__(self, rng: Random, timely: bool = False) -> None:
        self.rng = rng
        self.timely = timely
        self.revisions: dict[str, int] = {}
        self.windows: dict[str, tuple[datetime, datetime]] = {}

    def _revision(self, policy_id: str) -> int:
        self.revisions[policy_id] = self.revisions.get(policy_id, 0) + 1
        return self.revisions[policy_id]

    def _window(self, policy_id: str, at: datetime) -> tuple[datetime, datetime]:
        # Most windows outlast a run; some close during it, so decisions meet expired licences and tranches, and
        # some open later, so held orders are examined again when they do. Fixed per policy: a new revision
        # changes the quantity, never the window.
        if policy_id not in self.windows:
            if self.timely:
                self.windows[policy_id] = (at - timedelta(days=1), at + timedelta(days=60))
            else:
                late = self.rng.random() < 0.15
                opens = at + timedelta(hours=self.rng.choice((1, 6))) if late else at - timedelta(days=1)
                self.windows[policy_id] = (opens, at + timedelta(hours=self.rng.choice(WINDOW_H)))
        return self.windows[policy_id]

    def _effective(self, at: datetime, later: tuple[int, ...] = LATER_S) -> datetime:
        return at if self.timely else at + timedelta(seconds=self.rng.choice(later))

    def baseline(self, at: datetime) -> list[PolicyEvent]:
        """Use rules and the allocation rule, then for most buyers a licence, an import authorisation and a quota."""
        found: list[PolicyEvent] = [self.use_rules(at), self.allocation_rule(at, first=True)]
        for buyer in BUYERS:
            for make in (self.licence, self.importer_authorised, self.quota):
                if self.rng.random() < 0.95:
                    found.append(make(buyer, at))
        return found

    def change(self, at: datetime) -> PolicyEvent:
        buyer = self.rng.choice(BUYERS)
        kind = self.rng.choices(
            ("licence", "licence_revoked", "importer", "quota", "denied", "rule"), (5, 1, 5, 4, 6, 2)
        )[0]
        if kind == "licence":
            return self.licence(buyer, at)
        if kind == "licence_revoked":
            licence = licence_of(buyer)
            revision = self._revision(f"us-licence/{licence}")
            return ExportLicenceRevoked(
                policy_id=f"us-licence/{licence}", revision=revision, effective_at=self._effective(at), issued_by=BIS,
                licence_id=licence, buyer_id=buyer, reason="end use concerns",
            )  # fmt: skip
        if kind == "importer":
            return self.importer(buyer, at)
        if kind == "quota":
            return self.quota(buyer, at)
        if kind == "denied":
            return self.denied(buyer, at)
        return self.allocation_rule(at)

    def use_rules(self, at: datetime) -> ImportUseRulesSet:
        return ImportUseRulesSet(
            policy_id="cn-use-rules",
            revision=self._revision("cn-use-rules"),
            effective_at=at,
            issued_by=MOFCOM,
            necessary_uses=("ai_research", "model_training", "inference"),
            required_document_kinds=("end_use_statement", "usage_plan"),
            max_inference_share_pct=30,
            min_domestic_commitment_pct=20,
        )

    def allocation_rule(self, at: datetime, first: bool = False) -> AllocationPolicySet:
        rule = "first_approved_first_served" if self.rng.random() < (0.7 if first else 0.5) else "pro_rata"
        policy_id = f"allocation/{POOL}"
        close = None if self.timely else self.rng.choice(CLOSE_UNFILLED_S)
        return AllocationPolicySet(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=at if first else self._effective(at),
            issued_by=OPS, pool_id=POOL, rule=rule, close_unfilled_after_s=close,
        )  # fmt: skip

    def licence(
        self, buyer: str, at: datetime, quantity: int | None = None, effective_at: datetime | None = None
    ) -> ExportLicenceIssued:
        licence = licence_of(buyer)
        policy_id = f"us-licence/{licence}"
        valid_from, valid_until = self._window(policy_id, at)
        return ExportLicenceIssued(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=effective_at or self._effective(at),
            issued_by=BIS,
            licence_id=licence, buyer_id=buyer, quantity=quantity or self.rng.choice((30, 50, 80, 120)),
            valid_from=valid_from, valid_until=valid_until,
        )  # fmt: skip

    def quota(
        self, buyer: str, at: datetime, quantity: int | None = None, effective_at: datetime | None = None
    ) -> TrancheQuotaSet:
        policy_id = f"cn-quota/{TRANCHE}/{buyer}"
        opens_at, closes_at = self._window(policy_id, at)
        return TrancheQuotaSet(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=effective_at or self._effective(at),
            issued_by=MOFCOM,
            tranche_id=TRANCHE, buyer_id=buyer, quantity=quantity or self.rng.choice((30, 50, 80, 120)),
            opens_at=opens_at, closes_at=closes_at,
        )  # fmt: skip

    def importer_authorised(self, buyer: str, at: datetime) -> ImporterAuthorised:
        policy_id = f"cn-importer/{buyer}"
        return ImporterAuthorised(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=self._effective(at),
            issued_by=MOFCOM,
            buyer_id=buyer, buyer_name=NAMES[buyer],
        )  # fmt: skip

    def importer(self, buyer: str, at: datetime, kind: str | None = None) -> PolicyEvent:
        kind = kind or self.rng.choices(("suspended", "reinstated", "revoked", "authorised"), (4, 4, 1, 1))[0]
        if kind == "authorised":
            return self.importer_authorised(buyer, at)
        policy_id = f"cn-importer/{buyer}"
        event = {"suspended": ImporterSuspended, "reinstated": ImporterReinstated, "revoked": ImporterRevoked}[kind]
        return event(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=self._effective(at),
            issued_by=MOFCOM, buyer_id=buyer, reason=f"importer {kind}",
        )  # fmt: skip

    def denied(self, buyer: str, at: datetime, listed: bool | None = None, on: str | None = None) -> PolicyEvent:
        policy_id = on or self.rng.choice(DENIED_LISTS)
        listed = self.rng.random() < 0.5 if listed is None else listed
        event = DeniedPartyListed if listed else DeniedPartyDelisted
        return event(
            policy_id=policy_id, revision=self._revision(policy_id), effective_at=self._effective(at),
            issued_by=BIS, buyer_id=buyer, reason="list updated",
        )  # fmt: skip
