"""A worker built by services.common.faust_app.make_faust_app (the services' own settings) that copies one topic to
another: tests/integration/test_cluster_handover.py kills and restarts it. H200_MEMBER_SERVICE names the service (and
so its group, h200-<service>); settings come from the environment (H200_BOOTSTRAP_SERVERS, H200_<SERVICE>_*), the
topics from H200_MEMBER_IN and H200_MEMBER_OUT.

    python tests/integration/cluster_member_app.py worker --without-web -l warn
"""

from __future__ import annotations

import os

from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings

SERVICE = os.environ["H200_MEMBER_SERVICE"]
app = make_faust_app(SERVICE, ClusterSettings(), WorkerSettings.for_service(SERVICE))
source = app.topic(
    os.environ["H200_MEMBER_IN"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
sink = app.topic(
    os.environ["H200_MEMBER_OUT"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


@app.agent(source)
async def copy(stream):  # type: ignore[no-untyped-def]
    async for key, value in stream.items():
        await sink.send(key=key, value=value)


if __name__ == "__main__":
    app.main()
