"""A tiny faust-streaming app for tests/integration/test_faust.py: upper-cases every value of one topic
into another. Run as a script (the test starts it in a subprocess):

    H200_FAUST_BOOTSTRAP=127.0.0.1:P H200_FAUST_APP_ID=... H200_FAUST_DATADIR=... \
    H200_FAUST_IN_TOPIC=a H200_FAUST_OUT_TOPIC=b python tests/integration/faust_echo_app.py worker --without-web -l warn

Note: the `worker` command defaults to --with-web, which overrides web_enabled=False below and starts the
web server on 0.0.0.0:6066; pass --without-web (or set web_bind/web_port) to keep it off.
"""

from __future__ import annotations

import os

import faust

from services.common.kafka_auth import faust_credentials

app = faust.App(
    os.environ["H200_FAUST_APP_ID"],
    broker=f"kafka://{os.environ['H200_FAUST_BOOTSTRAP']}",
    broker_credentials=faust_credentials(),
    store="memory://",
    datadir=os.environ["H200_FAUST_DATADIR"],
    web_enabled=False,
    topic_replication_factor=1,
    topic_partitions=1,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
)

source = app.topic(
    os.environ["H200_FAUST_IN_TOPIC"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
sink = app.topic(
    os.environ["H200_FAUST_OUT_TOPIC"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


@app.agent(source)
async def upper(stream):  # type: ignore[no-untyped-def]
    async for key, value in stream.items():
        await sink.send(key=key, value=value.upper())


if __name__ == "__main__":
    app.main()
