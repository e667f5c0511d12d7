"""The local development broker of ``eventrules broker``, configured from settings."""

from __future__ import annotations

from eventrules.kafka.localbroker import LocalBroker, wait_for_broker
from eventrules.settings import Settings

__all__ = ["LocalBroker", "local_broker", "wait_until_answering"]


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker.from_settings(settings)


def wait_until_answering(settings: Settings, *, timeout: float) -> None:
    """Block until the deployment's brokers answer metadata; BrokerUnavailableError if not."""
    wait_for_broker(
        settings.bootstrap_servers, timeout=timeout, client_config=settings.kafka_client_config()
    )
