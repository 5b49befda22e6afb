"""Docker HEALTHCHECK: the broker answers a Kafka ApiVersions request on its client port."""

import os
import socket
import struct
import sys


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def main() -> int:
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    client_id = b"healthcheck"
    # request header v1 (api_key=18 ApiVersions, api_version=0, correlation_id, client_id) and an empty v0 body
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=4) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", recv_exact(sock, 4))
            correlation_id, error_code = struct.unpack(">ih", recv_exact(sock, size)[:6])
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    if correlation_id != 4242 or error_code != 0:
        print(f"unhealthy: correlation_id={correlation_id} error_code={error_code}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
