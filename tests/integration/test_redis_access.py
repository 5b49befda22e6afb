"""Redis ACL users on a real server: no anonymous access, the projector writes, the CLI and the API only read."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from session_logins import redis_login_url


@pytest.fixture(scope="module")
def port(redis_url: str) -> int:
    return int(urlsplit(redis_url).port or 0)


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


@pytest.fixture
def as_user(port: int) -> Iterator[dict[str, redis.Redis]]:
    users = {user: client(redis_login_url(port, user)) for user in ("admin", "projector", "reader")}
    yield users
    for user in users.values():
        user.close()


def test_an_anonymous_client_can_neither_read_nor_write(port: int) -> None:
    anonymous = client(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("h200:ledger")
        with pytest.raises(redis.AuthenticationError):
            anonymous.hset("h200:line:forged", "quantity", "1000000")
    finally:
        anonymous.close()


def test_a_wrong_password_is_refused(port: int) -> None:
    wrong = client(f"redis://reader:not-the-password@127.0.0.1:{port}/0")
    try:
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
    finally:
        wrong.close()


def test_the_projector_writes_and_the_reader_reads_but_cannot_write(as_user: dict[str, redis.Redis]) -> None:
    as_user["projector"].hset("acl-test:line", mapping={"quantity": "150"})
    assert as_user["reader"].hgetall("acl-test:line") == {"quantity": "150"}
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user["reader"].hset("acl-test:line", "quantity", "1000000")
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user["reader"].delete("acl-test:line")
    assert as_user["reader"].hgetall("acl-test:line") == {"quantity": "150"}


def test_the_reader_reads_in_a_transaction_but_cannot_write_in_one(as_user: dict[str, redis.Redis]) -> None:
    """The API and the CLI read the ledger's keys in one MULTI/EXEC (a consistent snapshot); a write queued in a
    transaction is refused all the same (compose's /v1/ledger answered 500 while MULTI was not granted)."""
    as_user["projector"].hset("acl-test:snapshot", mapping={"quantity": "150"})
    reading = as_user["reader"].pipeline(transaction=True)
    reading.hgetall("acl-test:snapshot").exists("acl-test:snapshot")
    assert reading.execute() == [{"quantity": "150"}, 1]
    writing = as_user["reader"].pipeline(transaction=True)
    writing.hset("acl-test:snapshot", "quantity", "1000000")
    with pytest.raises(redis.exceptions.NoPermissionError):
        writing.execute()
    assert as_user["admin"].hgetall("acl-test:snapshot") == {"quantity": "150"}


def test_a_reader_script_cannot_write(as_user: dict[str, redis.Redis]) -> None:
    with pytest.raises(redis.exceptions.ResponseError):
        as_user["reader"].eval("return redis.call('SET', KEYS[1], 'x')", 1, "acl-test:scripted")
    assert as_user["admin"].exists("acl-test:scripted") == 0


def test_the_projector_cannot_flush_or_reconfigure_redis(as_user: dict[str, redis.Redis]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user["projector"].flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user["projector"].config_set("appendonly", "no")
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user["projector"].acl_setuser("intruder", enabled=True, nopass=True, commands=["+@all"])
