"""The pure core of approval, in the decider shape of services.common.decider: NAME, initial_state, decide, evolve
and time_of.

Time (docs/time.md): each partition keeps a clock `now`, the latest tick or arrival it has seen; it never goes
back and every decision is made at it (`decided_at`, and the time the gates are checked at). A policy takes effect
when `now` reaches its effective_at; until then it is pending and changes nothing. As `now` passes a time, what
falls due is decided in the same step, before the input that moved it: pending policies coming into force (with
their consequences), a licence's valid_until (its open approvals EXPIRE; what shipped stays counted), a licence's
valid_from or a tranche's opens_at (the buyer's held orders are examined again). A tranche closing changes nothing
for approvals already given. After a tick read from the inbox, the partition writes ApprovalsPassed(at=now) to every
lane of h200.approvals: it decides nothing more dated before `now`.

Rules where the law left a choice (all numbers come from policy events):
- No licence at all, a licence outside its validity window, no import authorisation yet, a suspended importer,
  no open tranche, no use rules yet, a missing document: the order is HELD (it can still be fixed).
- A denied party, every licence revoked, a revoked importer, an unnecessary use, too much inference, too small a
  domestic commitment, a licence or tranche quota used up: the order is DENIED, listing every failed check.
- An approval draws on one licence (the one expiring first with chips left) and one tranche (closing first).
- The latest revision of a policy is the policy: a licence issued again after a revocation is in force again.
- A licence or quota cut below what open approvals hold revokes the newest approvals until the rest fit.
- Held orders are reconsidered on every newer policy in force concerning their buyer (use rules: every buyer),
  oldest hold first; a revocation therefore denies them at once. A cancelled held order leaves silently, never to
  be decided.
- Licence and quota use is given back only when the order book closes an order (OrderClosed: delivered, ended by
  a cancellation, revocation or expiry, or left unfilled too long), and only for the chips it did not keep.

Memory (issue #9): an order done with (denied; closed; cancelled, revoked or expired and holding no licence or
quota) is forgotten at the next input, leaving only its id (16 bytes, services.domain_kit.seen_ids) so that no
resend of it is decided. A partition holds its open and held orders, its policies and the ids it has folded.
"""

from services.approval import NAME
from services.approval.domain.decide import decide
from services.approval.domain.due import time_of
from services.approval.domain.evolve import evolve
from services.approval.domain.state import ApprovalState, initial_state

__all__ = ["NAME", "ApprovalState", "decide", "evolve", "initial_state", "time_of"]
