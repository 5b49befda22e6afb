"""How a Kafka client proves who it is: ClusterSettings turned into the options of each client library we use."""

from __future__ import annotations

from typing import Any

import faust

from services.common.settings import ClusterSettings


class KafkaCredentialsError(RuntimeError):
    pass


def _login(cluster: ClusterSettings) -> tuple[str, str]:
    user = cluster.kafka_username
    if not user:
        raise KafkaCredentialsError(
            "H200_KAFKA_USERNAME is not set, and the broker refuses clients that do not authenticate: set it to the "
            "principal this process acts as (e.g. admin, auditor, intake; `h200 access principals` lists them)"
        )
    if cluster.kafka_password is not None:
        return user, cluster.kafka_password.get_secret_value()
    secret = cluster.kafka_secrets_dir / user
    try:
        return user, secret.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise KafkaCredentialsError(
            f"no password for Kafka principal {user!r}: set H200_KAFKA_PASSWORD, or write it to {secret} "
            "(`h200 access secrets` generates one per principal; H200_KAFKA_SECRETS_DIR points elsewhere)"
        ) from None


def _settings(cluster: ClusterSettings | None) -> ClusterSettings:
    # Call sites that only know a bootstrap address read who they are from the environment, like every setting.
    return cluster if cluster is not None else ClusterSettings()


def kafka_python_options(cluster: ClusterSettings | None = None) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    cluster = _settings(cluster)
    if cluster.kafka_security_protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    user, password = _login(cluster)
    return {
        "security_protocol": cluster.kafka_security_protocol,
        "sasl_mechanism": cluster.kafka_sasl_mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


def librdkafka_options(cluster: ClusterSettings | None = None) -> dict[str, str]:
    """Configuration entries for confluent-kafka (librdkafka) clients: the same login, librdkafka's names."""
    cluster = _settings(cluster)
    if cluster.kafka_security_protocol == "PLAINTEXT":
        return {"security.protocol": "PLAINTEXT"}
    user, password = _login(cluster)
    return {
        "security.protocol": cluster.kafka_security_protocol,
        "sasl.mechanism": cluster.kafka_sasl_mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def java_properties(cluster: ClusterSettings | None = None) -> str:
    """The same login as Java client properties, for Kafka's own tools (`--command-config`); empty on PLAINTEXT."""
    login = librdkafka_options(cluster)
    if login["security.protocol"] == "PLAINTEXT":
        return ""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{login["sasl.username"]}" password="{login["sasl.password"]}";'
    )
    return (
        f"security.protocol={login['security.protocol']}\nsasl.mechanism={login['sasl.mechanism']}\n"
        f"sasl.jaas.config={jaas}\n"
    )


def aiokafka_options(cluster: ClusterSettings | None = None) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaProducer and AIOKafkaConsumer (the same names as kafka-python's)."""
    return kafka_python_options(cluster)


def faust_credentials(cluster: ClusterSettings | None = None) -> faust.SASLCredentials | None:
    """faust.App's broker_credentials (faust hands them to aiokafka); None on a PLAINTEXT cluster."""
    cluster = _settings(cluster)
    if cluster.kafka_security_protocol == "PLAINTEXT":
        return None
    user, password = _login(cluster)
    return faust.SASLCredentials(
        username=user,
        password=password,
        mechanism=cluster.kafka_sasl_mechanism,
        ssl_context=None,
    )
