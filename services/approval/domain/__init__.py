"""The pure core of approval, in the decider shape of services.common.decider: NAME, initial_state, decide, evolve.

Rules where the law left a choice (all numbers come from policy events):
- No licence at all, a licence outside its validity window, no import authorisation yet, a suspended importer,
  no open tranche, no use rules yet, a missing document: the order is HELD (it can still be fixed).
- A denied party, every licence revoked, a revoked importer, an unnecessary use, too much inference, too small a
  domestic commitment, a licence or tranche quota used up: the order is DENIED, listing every failed check.
- An approval draws on one licence (the one expiring first with chips left) and one tranche (closing first).
- The latest revision of a policy is the policy: a licence issued again after a revocation is in force again.
- A licence or quota cut below what open approvals hold revokes the newest approvals until the rest fit.
- Held orders are reconsidered on every newer policy concerning their buyer (use rules: every buyer), oldest hold
  first; a revocation therefore denies them at once. A cancelled held order leaves silently, never to be decided.
"""

from services.approval import NAME
from services.approval.domain.decide import decide
from services.approval.domain.evolve import evolve
from services.approval.domain.state import ApprovalState, initial_state

__all__ = ["NAME", "ApprovalState", "decide", "evolve", "initial_state"]
