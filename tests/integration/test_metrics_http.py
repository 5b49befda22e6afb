"""The small HTTP server of a process without one of its own (the projector) answers its pages on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from services.common.metrics import json_page, serve_pages


def test_pages_are_served_on_loopback_and_unknown_paths_are_404() -> None:
    pages = {"/ready": lambda: json_page(503, {"ready": False, "reason": "starting"})}
    server = serve_pages(0, pages, "test")
    port = server.server_address[1]
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert refused.value.code == 503
        assert json.loads(refused.value.read())["reason"] == "starting"
        refused.value.close()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
    finally:
        server.shutdown()
        server.server_close()
