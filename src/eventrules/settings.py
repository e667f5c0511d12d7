"""Settings: one pydantic-settings class, every field overridable as ``EVENTRULES_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventrules.auth import HttpToken
from eventrules.errors import ConfigurationError

__all__ = ["Settings", "TopicNames", "find_project_file"]


def find_project_file(relative: str) -> Path | None:
    """Find a file shipped in the repository (``topics/``, ``config/``, ``kafka/pom.xml``).

    Looks upward from the working directory first (an operator's checkout), then beside the
    installed package (an editable install from the repository).
    """
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / relative
            if candidate.exists():
                return candidate
    return None


@dataclass(frozen=True)
class TopicNames:
    """Real topic names: the deployment prefix applied to the logical names of ``topics/``."""

    prefix: str

    def __call__(self, logical: str) -> str:
        return self.prefix + logical

    @property
    def executions(self) -> str:
        return self("executions")

    @property
    def dlq(self) -> str:
        return self("dlq")

    @property
    def config(self) -> str:
        return self("config")


class Settings(BaseSettings):
    """Everything a worker or the CLI needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="EVENTRULES_", extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    topic_prefix: str = Field(
        default="eventrules.",
        description="Prepended to every declared topic name, so deployments can share a cluster.",
    )
    topics_dir: Path | None = Field(
        default=None, description="Folder of declared topic files; default: the repo's topics/."
    )

    # Kafka client security (SASL/TLS); empty means PLAINTEXT.
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None

    # The worker.
    app_id: str = Field(
        default="eventrules",
        description="Consumer group of the workers (and prefix of their other groups).",
    )
    web_host: str = "127.0.0.1"
    http_tokens: list[HttpToken] = Field(
        default_factory=list,
        description=(
            'Bearer tokens of the web server and console, by digest (JSON list of {"name", '
            '"sha256", "scope": "read"|"admin"}); `eventrules auth new-token` makes one.'
        ),
    )
    web_port: int = 6066
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a brand-new consumer group starts reading events."
    )
    session_timeout_seconds: float = 10.0
    commit_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="at_least_once: how often delivered batches' offsets are committed.",
    )
    lag_interval_seconds: float = 5.0
    max_event_bytes: int = 1_048_576
    timezone: str = Field(default="UTC", description="Zone for dayOfWeek/hour facts and schedules.")
    extra_trigger_files: list[Path] = Field(
        default_factory=list, description="Operator trigger catalogs merged with the built-in one."
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Signing secrets by name (JSON object), e.g. {"crm": "whsec_..."}.',
    )
    webhook_allow_list: list[str] = Field(
        default_factory=list,
        description='CIDRs/hosts webhooks may reach despite the SSRF guard, e.g. ["127.0.0.1/32"].',
    )

    # The local development broker started by `eventrules broker start`.
    broker_port: int = 9092
    controller_port: int = 9093
    broker_data_dir: Path = Path(".eventrules/kafka")
    broker_heap: str = "512m"
    kafka_pom: Path | None = Field(
        default=None, description="pom.xml that resolves the broker jars; default: kafka/pom.xml."
    )

    def resolved_topics_dir(self) -> Path:
        found = self.topics_dir or find_project_file("topics")
        if found is None or not found.is_dir():
            raise ConfigurationError(
                "no topics/ folder found; set EVENTRULES_TOPICS_DIR to the declared topic files"
            )
        return found

    def topic(self, logical: str) -> str:
        """The real name of a declared topic (``config`` -> ``eventrules.config``)."""
        return self.topic_prefix + logical

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def zoneinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every producer, consumer and admin client."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol:
            config["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config
