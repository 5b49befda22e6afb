"""Settings become each client library's login options; a missing login says what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.kafka_auth import (
    KafkaCredentialsError,
    faust_credentials,
    java_properties,
    kafka_python_options,
    librdkafka_options,
)
from services.common.settings import ClusterSettings, redis_url_with_password
from services.ops.supervisor import as_principal


def test_a_principal_logs_in_with_scram_and_the_password_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "auditor").write_text("s3cret\n")
    cluster = ClusterSettings(kafka_username="auditor", kafka_password=None, kafka_secrets_dir=tmp_path)
    assert kafka_python_options(cluster) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "auditor",
        "sasl_plain_password": "s3cret",
    }
    credentials = faust_credentials(cluster)
    assert credentials is not None
    assert (credentials.username, credentials.password, credentials.mechanism.value) == (
        "auditor",
        "s3cret",
        "SCRAM-SHA-512",
    )


def test_replay_s_librdkafka_client_logs_in_the_same_way_under_librdkafka_s_names(tmp_path: Path) -> None:
    (tmp_path / "auditor").write_text("s3cret\n")
    cluster = ClusterSettings(kafka_username="auditor", kafka_password=None, kafka_secrets_dir=tmp_path)
    assert librdkafka_options(cluster) == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "auditor",
        "sasl.password": "s3cret",
    }
    plaintext = ClusterSettings(kafka_security_protocol="PLAINTEXT", kafka_username=None, kafka_secrets_dir=tmp_path)
    assert librdkafka_options(plaintext) == {"security.protocol": "PLAINTEXT"}
    with pytest.raises(KafkaCredentialsError, match="no password for Kafka principal 'ops'"):
        librdkafka_options(ClusterSettings(kafka_username="ops", kafka_password=None, kafka_secrets_dir=tmp_path))


def test_kafkas_own_java_tools_log_in_the_same_way_from_a_properties_file(tmp_path: Path) -> None:
    (tmp_path / "upstream-tencent").write_text("s3cret\n")
    cluster = ClusterSettings(kafka_username="upstream-tencent", kafka_password=None, kafka_secrets_dir=tmp_path)
    assert java_properties(cluster).splitlines() == [
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="upstream-tencent" password="s3cret";',
    ]
    plaintext = ClusterSettings(kafka_security_protocol="PLAINTEXT", kafka_username=None, kafka_secrets_dir=tmp_path)
    assert java_properties(plaintext) == ""


def test_a_client_without_a_principal_is_told_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(KafkaCredentialsError, match="H200_KAFKA_USERNAME is not set"):
        kafka_python_options(ClusterSettings(kafka_username=None, kafka_secrets_dir=tmp_path))
    with pytest.raises(KafkaCredentialsError, match="no password for Kafka principal 'ops'"):
        kafka_python_options(ClusterSettings(kafka_username="ops", kafka_password=None, kafka_secrets_dir=tmp_path))


def test_a_redis_url_naming_a_user_gets_its_password_from_the_secrets(tmp_path: Path) -> None:
    (tmp_path / "reader").write_text("p@ss\n")
    assert redis_url_with_password("redis://reader@127.0.0.1:6379/0", tmp_path) == (
        "redis://reader:p%40ss@127.0.0.1:6379/0"
    )
    assert redis_url_with_password("redis://reader:given@127.0.0.1:6379/0", tmp_path).endswith("given@127.0.0.1:6379/0")


def test_the_supervisor_starts_a_process_as_its_own_principal_without_the_callers_password() -> None:
    env = {"H200_KAFKA_USERNAME": "admin", "H200_KAFKA_PASSWORD": "admin-pw", "H200_REDIS_URL": "redis://admin:x@h:1/0"}
    assert as_principal(env, "projector") == {
        "H200_KAFKA_USERNAME": "projector",
        "H200_REDIS_URL": "redis://projector@h:1/0",
    }
    assert as_principal(env, "intake") == {"H200_KAFKA_USERNAME": "intake"}  # intake uses no Redis
