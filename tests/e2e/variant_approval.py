"""The approval service with a changed core, for the rolling-deploy test (test_deploy.py): it decides as approval
does, but every approval it makes carries an extra condition, under its own version. The ids of its decisions
are the original's (they derive from the cause), so a redelivered record decided again by it would put a
changed decision under an existing id: what recovery from the journal must never let happen.

`python -m variant_approval worker -l info --without-web`, with tests/e2e on PYTHONPATH."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.approval import OrderApproved
from schemas.base import Message, Reason
from services.approval import domain
from services.approval.app import INBOX, ROUTES
from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import ServiceWorker

VARIANT = Reason(code="variant_condition", message="added by the changed core deployed mid-stream")


class VariantCore:
    NAME = domain.NAME
    VERSION = "variant-adds-a-condition"
    initial_state = staticmethod(domain.initial_state)
    evolve = staticmethod(domain.evolve)
    time_of = staticmethod(domain.time_of)

    @staticmethod
    def decide(state: Any, message: Any) -> Sequence[Message]:
        return [
            output.model_copy(update={"conditions": (*output.conditions, VARIANT)})
            if isinstance(output, OrderApproved)
            else output
            for output in domain.decide(state, message)
        ]


if __name__ == "__main__":
    cluster, worker = ClusterSettings(), WorkerSettings.for_service("approval")
    app = make_faust_app("approval", cluster, worker)
    ServiceWorker(app, "approval", VariantCore(), INBOX, ROUTES, cluster, worker)
    app.main()
