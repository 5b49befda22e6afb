"""Shared pytest configuration: markers, tier marking by path, and the container fixtures.

Containers (session scope, started on first use, removed at the end of the session):

* ``kafka_bootstrap`` -> ``"127.0.0.1:P"``: a single-node KRaft broker from ``$H200_KAFKA_IMAGE``
  (default ``h200/kafka:4.4.0``, built by ``make images``). A free host port P is chosen and the container
  listens on P *inside* the container too, advertising ``127.0.0.1:P``; the port is published as
  ``127.0.0.1:P -> P``, so the advertised address is valid on the host and inside the container alike.
* ``module_kafka_bootstrap`` (module scope): the same, but a fresh broker per test module (the e2e tier).
* ``redis_url`` -> ``"redis://127.0.0.1:P/0"`` from ``$H200_REDIS_IMAGE`` (default ``h200/redis:7``),
  published as ``127.0.0.1:P -> 6379``.
* ``redis_client`` (function scope): a ``redis.Redis`` on that server, database flushed before each test.

Image environment contracts:

* our image (infra/images/kafka): ``KAFKA_PORT``, ``KAFKA_ADVERTISED_HOST``, ``KAFKA_NODE_ID`` (+ optional
  ``KAFKA_CFG_<PROPERTY>``);
* an image whose name starts with ``apache/kafka`` (official ``apache/kafka`` / ``apache/kafka-native``, 3.7+,
  pulled from a registry if absent): the official ``KAFKA_<PROPERTY>`` variables (``KAFKA_PROCESS_ROLES``,
  ``KAFKA_LISTENERS``, ``KAFKA_ADVERTISED_LISTENERS``, ``KAFKA_CONTROLLER_QUORUM_VOTERS``, replication
  factor 1 for the internal topics, ...), set below to the same single-node configuration;
* any other Redis image must run ``redis-server`` reachable on container port 6379 (``redis:7`` does).

Escape hatches: ``H200_TEST_KAFKA_BOOTSTRAP`` / ``H200_TEST_REDIS_URL`` use an already running broker / Redis instead
of starting containers (then ``redis_client`` does not flush; it only hands out a client).

If no Docker engine answers or a locally built image is missing, the fixtures FAIL (never skip) and name
the command to run: ``make images`` (= ``infra/images/docker-engine.sh ensure && infra/images/build.sh``).
"""

from __future__ import annotations

import os

# testcontainers reads these at import time. Ryuk (the reaper) would be pulled from a registry: disabled,
# the fixtures remove their containers themselves. /.dockerenv exists on these machines, which makes
# testcontainers hand out the bridge gateway as host; mapped ports are on loopback instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")


import contextlib
import secrets as _secrets
import socket
import struct
import tempfile as _tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from session_logins import redis_login_url, secret_of

# kafka-python 3.0.12 warns (DeprecationWarning: importlib.resources.read_text) while importing itself. A
# sub-directory conftest.py given on the command line (pytest tests/integration) is imported before
# pytest_configure adds the filters below, under pyproject's "error" filter: import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):  # if missing, the integration fixtures report it
        import kafka  # noqa: F401

# Every broker the tests start authenticates its clients and enforces the catalogue's ACLs (docs/security.md). The
# session's principals get fresh passwords in a private directory; the tests themselves act as the admin, and each
# process the e2e tier starts logs in as its own principal (services.ops.supervisor.as_principal).
if not os.environ.get("H200_KAFKA_SECRETS_DIR"):
    os.environ["H200_KAFKA_SECRETS_DIR"] = _tempfile.mkdtemp(prefix="h200-test-secrets-")
    os.environ.pop("H200_KAFKA_PASSWORD", None)
os.environ.setdefault("H200_KAFKA_USERNAME", "admin")
if not os.environ.get("H200_REDIS_SECRETS_DIR"):
    os.environ["H200_REDIS_SECRETS_DIR"] = _tempfile.mkdtemp(prefix="h200-test-redis-secrets-")
if not os.environ.get("H200_API_SECRETS_DIR"):
    # The HTTP API's bearer tokens (services.api.callers): the auditor's here, a buyer's where a test needs it.
    os.environ["H200_API_SECRETS_DIR"] = _tempfile.mkdtemp(prefix="h200-test-api-secrets-")
for _variable, _names in (
    ("H200_KAFKA_SECRETS_DIR", ("admin", "controller")),
    ("H200_REDIS_SECRETS_DIR", ("admin", "projector", "reader")),
    ("H200_API_SECRETS_DIR", ("auditor",)),
):
    for _name in _names:
        _path = os.path.join(os.environ[_variable], _name)
        if not os.path.exists(_path):
            with open(os.open(_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as _out:
                _out.write(_secrets.token_hex(24) + "\n")

DEFAULT_KAFKA_IMAGE = "h200/kafka:4.4.0"
DEFAULT_REDIS_IMAGE = "h200/redis:7"
LOCAL_IMAGE_PREFIX = "h200/"
BUILD_HINT = (
    "run `make images` (i.e. `infra/images/docker-engine.sh ensure && infra/images/build.sh`) "
    "to start the Docker engine and build the images locally"
)
CONTAINER_NAME_PREFIX = "h200-test-"

TIERS = {
    "unit": "fast tests without external processes",
    "integration": "tests against real Kafka/Redis containers (tests/integration)",
    "e2e": "end-to-end tests running the services against real Kafka/Redis (tests/e2e)",
}


# ----------------------------------------------------------------------------------------------- pytest hooks


# Third-party client libraries that emit DeprecationWarnings from their own code (e.g. kafka-python 3.0.12 calls
# importlib.resources.read_text at import time). pyproject turns warnings into errors; these filters are
# appended after its list, so they win for warnings attributed to these packages only.
THIRD_PARTY_WARNING_FILTERS = [
    "ignore::DeprecationWarning:kafka.*",
    "ignore::DeprecationWarning:aiokafka.*",
    "ignore::DeprecationWarning:faust.*",
    "ignore::DeprecationWarning:mode.*",
]


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in TIERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    for line in THIRD_PARTY_WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            rel = Path(str(item.path)).resolve().relative_to(tests_dir)
        except ValueError:
            continue
        tier = rel.parts[0] if len(rel.parts) > 1 else None
        if tier in TIERS and item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))


# ------------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; tiny race until the container binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _local_engine_problem() -> str | None:
    """Ping a local (unix socket) engine ourselves: docker-py leaks its socket when the connect fails, and
    pyproject turns the resulting ResourceWarning into an error that hides the real message."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None  # tcp/ssh engines: left to docker-py
    path = host[len("unix://") :]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(256).split(b"\r\n", 1)[0]
    except OSError as exc:
        return f"{path}: {exc}"
    if b" 200" not in status_line:
        return f"{path} answered {status_line.decode(errors='replace')!r} to /_ping"
    return None


def _docker_client() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - testcontainers depends on docker
        pytest.fail(f"the `docker` Python package is missing ({exc}); install the test dependencies", pytrace=False)
    problem = _local_engine_problem()
    if problem:
        pytest.fail(
            f"No Docker engine answers ({problem}). The integration tier needs one: {BUILD_HINT}.", pytrace=False
        )
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # docker.errors.DockerException, connection errors, ...
        if client is not None:
            client.close()
        pytest.fail(
            f"No Docker engine answers ({type(exc).__name__}: {exc}). The integration tier needs one: {BUILD_HINT}.",
            pytrace=False,
        )
    return client


def _require_image(client: Any, image: str, variable: str) -> None:
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    if image.startswith(LOCAL_IMAGE_PREFIX):
        pytest.fail(f"Docker image {image} (${variable}) is missing: {BUILD_HINT}.", pytrace=False)
    try:  # a registry image chosen on purpose: let the engine pull it
        client.images.pull(image)
    except Exception as exc:
        pytest.fail(
            f"Docker image {image} (${variable}) is not present and cannot be pulled ({exc}). "
            f"Unset ${variable} to use the local image, then {BUILD_HINT}.",
            pytrace=False,
        )


def _logs(container: Any, limit: int = 8000) -> str:
    try:
        out, err = container.get_logs()
        text = (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
    except Exception as exc:
        return f"<no logs: {exc}>"
    return text[-limit:]


def _state(container: Any) -> str:
    try:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        return str(wrapped.status)
    except Exception as exc:
        return f"unknown ({exc})"


def _start(container: Any, what: str) -> None:
    try:
        container.start()
    except Exception as exc:
        _remove(container)
        pytest.fail(f"could not start the {what} container: {type(exc).__name__}: {exc}", pytrace=False)


def _remove(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.stop(force=True, delete_volume=True)


def publish_on_loopback(container: Any, container_port: int, host_port: int) -> None:
    """Publish ``container_port`` as ``127.0.0.1:host_port`` only. testcontainers' with_bind_ports cannot name
    a host IP (it would bind 0.0.0.0); docker-py, underneath, accepts an (ip, port) tuple."""
    ports: dict[str, Any] = container.ports
    ports[f"{container_port}/tcp"] = ("127.0.0.1", host_port)


def kafka_container_env(image: str, port: int, node_id: int = 1) -> dict[str, str]:
    """Environment for a single-node broker listening on ``port`` and advertising ``127.0.0.1:port``."""
    if image.startswith("apache/kafka") or "/apache/kafka" in image:  # also docker.io/apache/kafka-native:...
        controller = 9093 if port != 9093 else 9094
        return {
            "KAFKA_NODE_ID": str(node_id),
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://localhost:{controller}",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": f"{node_id}@localhost:{controller}",
            "KAFKA_NUM_PARTITIONS": "1",
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
            "KAFKA_MIN_INSYNC_REPLICAS": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        }
    return {
        "KAFKA_PORT": str(port),
        "KAFKA_ADVERTISED_HOST": "127.0.0.1",
        "KAFKA_NODE_ID": str(node_id),
        "KAFKA_ADMIN_PASSWORD": secret_of("admin"),
        "KAFKA_CONTROLLER_PASSWORD": secret_of("controller"),
    }


def apply_test_access(bootstrap: str) -> None:
    """Give every principal its SCRAM password and the catalogue's ACLs on a broker the session started."""
    from kafka.admin import KafkaAdminClient

    from services.common.kafka_auth import kafka_python_options
    from services.ops.access import apply_access, ensure_secrets

    directory = Path(os.environ["H200_KAFKA_SECRETS_DIR"])
    ensure_secrets(directory)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="h200-test-access", **kafka_python_options())
    try:
        apply_access(admin, directory)
    finally:
        admin.close()


def kafka_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True if ``host:port`` answers a Kafka ApiVersions request. Cheap and quiet, unlike a client whose
    bootstrap backs off exponentially; docker-proxy accepts TCP connections before the broker listens."""
    host, _, port = bootstrap.rpartition(":")
    client_id = b"h200-test-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return False
            payload = sock.recv(min(struct.unpack(">i", header)[0], 64), socket.MSG_WAITALL)
            return len(payload) >= 6 and struct.unpack(">ih", payload[:6]) == (7, 0)
    except OSError:
        return False


def wait_for_kafka(bootstrap: str, timeout: float, container: Any | None = None) -> None:
    """Block until a kafka-python admin client lists topics on ``bootstrap``; fail with logs on timeout."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError

    from services.common.kafka_auth import kafka_python_options

    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if container is not None and _state(container) in ("exited", "dead"):
            break
        if not kafka_answers(bootstrap):
            last_error = ConnectionError(f"{bootstrap} does not answer ApiVersions yet")
            time.sleep(0.25)
            continue
        admin = None
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="h200-test-readiness",
                request_timeout_ms=5000,
                **kafka_python_options(),
            )
            admin.list_topics()
            return
        except (KafkaConfigurationError, TypeError):
            raise  # a bug in this fixture, not a broker that is still starting
        except Exception as exc:
            last_error = exc
            time.sleep(0.5)
        finally:
            if admin is not None:
                with contextlib.suppress(Exception):
                    admin.close()
    detail = ""
    if container is not None:
        detail = f"\ncontainer state: {_state(container)}\n--- container logs (tail) ---\n{_logs(container)}"
    pytest.fail(
        f"Kafka at {bootstrap} did not list topics within {timeout:.0f}s (last error: {last_error!r}){detail}",
        pytrace=False,
    )


def wait_for_redis(url: str, timeout: float, container: Any | None = None) -> None:
    import redis

    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if container is not None and _state(container) in ("exited", "dead"):
            break
        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                if client.ping():
                    return
            finally:
                client.close()
        except Exception as exc:
            last_error = exc
            time.sleep(0.2)
    detail = ""
    if container is not None:
        detail = f"\ncontainer state: {_state(container)}\n--- container logs (tail) ---\n{_logs(container)}"
    pytest.fail(
        f"Redis at {url} did not answer PING within {timeout:.0f}s (last error: {last_error!r}){detail}", pytrace=False
    )


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def kafka_image() -> str:
    return os.environ.get("H200_KAFKA_IMAGE") or DEFAULT_KAFKA_IMAGE


@pytest.fixture(scope="session")
def redis_image() -> str:
    return os.environ.get("H200_REDIS_IMAGE") or DEFAULT_REDIS_IMAGE


@contextlib.contextmanager
def running_kafka(image: str) -> Iterator[str]:
    """A single-node broker in a new container (or ``$H200_TEST_KAFKA_BOOTSTRAP``): ``"127.0.0.1:P"``."""
    external = os.environ.get("H200_TEST_KAFKA_BOOTSTRAP")
    timeout = float(os.environ.get("H200_KAFKA_START_TIMEOUT", "120"))
    if external:
        wait_for_kafka(external, timeout)
        yield external
        return

    client = _docker_client()
    try:
        _require_image(client, image, "H200_KAFKA_IMAGE")
    finally:
        client.close()
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = DockerContainer(image).with_name(f"{CONTAINER_NAME_PREFIX}kafka-{uuid.uuid4().hex[:8]}")
    for key, value in kafka_container_env(image, port).items():
        container.with_env(key, value)
    publish_on_loopback(container, port, port)
    _start(container, f"Kafka ({image})")
    bootstrap = f"127.0.0.1:{port}"
    try:
        wait_for_kafka(bootstrap, timeout, container)
        apply_test_access(bootstrap)
        yield bootstrap
    finally:
        _remove(container)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_image: str) -> Iterator[str]:
    """``"127.0.0.1:P"`` of a single-node Kafka broker running for this test session."""
    with running_kafka(kafka_image) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def module_kafka_bootstrap(kafka_image: str) -> Iterator[str]:
    """Like ``kafka_bootstrap``, but a fresh broker for each test module: its topics, groups and offsets start
    empty. With ``$H200_TEST_KAFKA_BOOTSTRAP`` every module shares that broker instead (no isolation)."""
    with running_kafka(kafka_image) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def spare_kafka_bootstrap(kafka_image: str) -> Iterator[str]:
    """A second fresh broker for a test module that needs an empty cluster beside ``module_kafka_bootstrap``
    (e.g. to import an export into). With ``$H200_TEST_KAFKA_BOOTSTRAP`` it is that same broker."""
    with running_kafka(kafka_image) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def _redis_server(redis_image: str) -> Iterator[tuple[str, bool]]:
    """(url, owned): owned means the fixture started the server, so tests may flush it."""
    external = os.environ.get("H200_TEST_REDIS_URL")
    timeout = float(os.environ.get("H200_REDIS_START_TIMEOUT", "60"))
    if external:
        wait_for_redis(external, timeout)
        yield external, False
        return

    client = _docker_client()
    try:
        _require_image(client, redis_image, "H200_REDIS_IMAGE")
    finally:
        client.close()
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = DockerContainer(redis_image).with_name(f"{CONTAINER_NAME_PREFIX}redis-{uuid.uuid4().hex[:8]}")
    publish_on_loopback(container, 6379, port)
    for user in ("ADMIN", "PROJECTOR", "READER"):
        container.with_env(f"REDIS_{user}_PASSWORD", secret_of(user.lower(), "H200_REDIS_SECRETS_DIR"))
    _start(container, f"Redis ({redis_image})")
    url = redis_login_url(port, "admin")  # the tests act as the admin; the e2e tier's processes as their own users
    try:
        wait_for_redis(url, timeout, container)
        yield url, True
    finally:
        _remove(container)


@pytest.fixture(scope="session")
def redis_url(_redis_server: tuple[str, bool]) -> str:
    """``"redis://admin:PASSWORD@127.0.0.1:P/0"`` of a Redis server running for this test session."""
    return _redis_server[0]


@pytest.fixture
def redis_client(_redis_server: tuple[str, bool]) -> Iterator[Any]:
    """A ``redis.Redis`` (bytes responses) on the session server; its database is flushed first when the
    session started the server. With ``H200_TEST_REDIS_URL`` nothing is flushed: use ``redis_key_prefix``."""
    import redis

    url, owned = _redis_server
    client = redis.Redis.from_url(url)
    if owned:
        client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_key_prefix() -> str:
    """A random key prefix, for tests that must not collide with other data in the same database."""
    return f"test:{uuid.uuid4().hex[:12]}:"
