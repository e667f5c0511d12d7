"""Settings: one pydantic-settings class, every field overridable as ``EVENTRULES_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from eventrules.auth import HttpToken
from eventrules.definitions.versions import DEFAULT_MAX_VERSION_STEP
from eventrules.errors import ConfigurationError
from eventrules.limits import Limits

__all__ = ["SHIPPED_DIR", "Settings", "TopicNames", "find_project_file"]

_PACKAGE_DIR: Final = Path(__file__).resolve().parent
# Package data of an installed wheel (pyproject.toml maps the repository's files there).
SHIPPED_DIR: Final = _PACKAGE_DIR / "shipped"


def find_project_file(relative: str) -> Path | None:
    """A file the package ships (``topics``, ``config/triggers.yaml``, ``config/templates``,
    ``kafka/pom.xml``): the installed wheel's copy, else the repository's when the package runs
    from its source tree (an editable install). Never looked up from the working directory, or
    beside the package, where a ``topics/`` may be anything (it once was a Python package).
    """
    roots = [SHIPPED_DIR]
    if _PACKAGE_DIR.parent.name == "src" and (_PACKAGE_DIR.parents[1] / "pyproject.toml").is_file():
        roots.append(_PACKAGE_DIR.parents[1])
    for root in roots:
        candidate = root / relative
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

    @property
    def audit(self) -> str:
        return self("config-audit")


def _describe(error: ValidationError) -> str:
    """The problems of a settings error without their input values, which may be secrets."""
    lines = []
    for problem in error.errors(include_url=False):
        field, *inner = problem["loc"] or ("?",)
        where = f"EVENTRULES_{str(field).upper()}" + "".join(f"[{part}]" for part in inner)
        lines.append(f"{where}: {problem['msg']} (got {type(problem['input']).__name__})")
    return "invalid settings:\n  " + "\n  ".join(lines)


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
        default=None, description="Folder of declared topic files; default: the shipped ones."
    )
    templates_dir: Path | None = Field(
        default=None, description="Folder of workflow/rule templates; default: the shipped ones."
    )

    # Kafka client security (SASL/TLS); empty means PLAINTEXT.
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    # Mutual TLS: the client's certificate and private key (PEM files).
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None

    # Who may change definitions (see README, "Security model").
    config_signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs published definitions; "
        "`eventrules config keygen` makes one.",
    )
    config_trusted_keys: list[str] = Field(
        default_factory=list,
        description="Public keys whose signatures workers accept on the config topic (JSON list); "
        "when any is set, unsigned records are rejected.",
    )
    config_max_version_step: int = Field(
        default=DEFAULT_MAX_VERSION_STEP,
        ge=1,
        description="Largest accepted jump above a definition's highest version.",
    )
    scheduler_secret: SecretStr | None = Field(
        default=None,
        description="Shared by every worker: the scheduler signs its ticks with it (HMAC-SHA256) "
        "and workers dead-letter unsigned ticks.",
    )
    rules_reply_topics: list[str] = Field(
        default_factory=list,
        description="Glob patterns of topics a rule request's reply_to may name; default: the "
        "results topic and <prefix>rules.replies.*",
    )

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
    web_allow_unauthenticated: bool = Field(
        default=False,
        description="Serve a non-loopback address without HTTP tokens (otherwise the worker "
        "refuses to start).",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    execution_event: Literal["reference", "full"] = Field(
        default="reference",
        description="What an execution record keeps of its event: where it was read (topic,"
        " partition, offset, the fields its conditions read), or a full copy.",
    )
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
    state_dir: Path | None = Field(
        default=Path(".eventrules/state"),
        description="Local state stores (SQLite, one file per partition); restored from the"
        " changelog topic when absent. Empty: a temporary file per partition.",
    )
    state_timer_grace_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="An absence watch fires this long after its deadline: time for an"
        " expected event already on its way through another worker.",
    )
    max_event_bytes: int = 1_048_576
    stall_seconds: float = Field(
        default=180.0,
        gt=0,
        description="/healthz fails once a stream has had input waiting and made no progress "
        "for this long, so the orchestrator restarts a stuck worker.",
    )
    crash_guard_window: int = Field(
        default=1000,
        ge=0,
        description="After a worker died, records its successor handles one at a time behind "
        "a commit mark (0 turns the crash-loop guard off).",
    )
    crash_guard_limit: int = Field(
        default=2,
        ge=1,
        description="Worker deaths a record may be in flight at before it is dead-lettered "
        "(reason crash_loop).",
    )
    output_attempts: int = Field(
        default=2,
        ge=2,
        description="Attempts an output the broker refuses for good gets before its input is "
        "dead-lettered (reason output_rejected).",
    )
    dead_letter_max_bytes: int = Field(
        default=990_000,
        ge=10_000,
        description="A dead letter larger than this keeps its headers and a truncated value.",
    )
    webhook_inline_budget_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds of inline webhook attempts one batch may spend; past it, webhooks "
        "go to the retry tiers without an inline attempt.",
    )
    retry_attempt_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Upper bound on one retried webhook attempt (the action's own timeout "
        "applies below it).",
    )
    retry_concurrency: int = Field(
        default=16, ge=1, description="Retried actions attempted at once by one worker."
    )

    # Bounds on hostile input: see eventrules.limits and the README's "Limits" table.
    max_json_depth: int = Field(
        default=64,
        ge=1,
        le=200,  # what eventrules writes back wraps the input in a few levels; orjson writes 254
        description="Deepest JSON nesting accepted in events, rule requests and definitions.",
    )
    condition_max_depth: int = Field(
        default=32, ge=1, le=64, description="Deepest nesting of all/any/not in one condition."
    )
    condition_max_nodes: int = Field(
        default=500, ge=1, le=100_000, description="Most comparisons and groups in one condition."
    )
    condition_max_chars: int = Field(
        default=4096, ge=16, le=1_048_576, description="Longest one-line condition (shorthand)."
    )
    template_max_chars: int = Field(
        default=20_000, ge=16, le=1_048_576, description="Longest template source."
    )
    template_max_depth: int = Field(
        default=20,
        ge=4,
        le=32,  # Python's compiler refuses the code jinja generates for much deeper templates
        description="Deepest nesting of blocks, brackets and operators in one template.",
    )
    template_max_output_chars: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Most characters one template may produce, {% set %} blocks included.",
    )
    template_max_loop_iterations: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Most {% for %} iterations all templates rendered for one event may run.",
    )
    template_max_render_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="Most CPU seconds all templates rendered for one event may take together.",
    )
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
        description="CIDRs/hosts, optionally with a port, webhooks may reach despite the SSRF "
        'guard, e.g. ["127.0.0.1:8080", "10.0.0.0/8:443"].',
    )
    webhook_ca_location: str | None = Field(
        default=None,
        description="PEM bundle of the CAs webhook servers' certificates are checked against "
        "(default: the certifi bundle).",
    )

    # Logs and traces.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Level of the worker's log (`eventrules worker --loglevel`)."
    )
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto",
        description="text for people, json (one object per line) for log pipelines; "
        "auto: text when stderr is a terminal, json otherwise.",
    )
    otel_enabled: bool = Field(
        default=False,
        description="OpenTelemetry tracing of the worker (exporter and endpoint from the "
        "standard OTEL_* variables; see docs/observability.md).",
    )

    # The web console (`eventrules console`, docs/console.md).
    console_host: str = Field(
        default="127.0.0.1", description="Address the console binds; loopback unless told."
    )
    console_port: int = Field(default=6070, ge=1, le=65535)
    console_index_path: Path = Field(
        default=Path(".eventrules/console/executions.sqlite3"),
        description="The console's index of the executions topic; rebuilt from it when missing.",
    )
    console_worker_urls: list[str] = Field(
        default_factory=list,
        description="Workers' web addresses the console scrapes for rule evaluation counts.",
    )
    console_trust_proxy: bool = Field(
        default=False,
        description="Believe X-Forwarded-Proto from a TLS-terminating proxy (Secure cookies).",
    )
    console_session_minutes: int = Field(
        default=480, ge=5, le=10_080, description="A console login lasts this long."
    )

    # The local development broker started by `eventrules broker start`.
    broker_port: int = 9092
    controller_port: int = 9093
    broker_data_dir: Path = Path(".eventrules/kafka")
    broker_heap: str = "512m"
    kafka_pom: Path | None = Field(
        default=None, description="pom.xml that resolves the broker jars; default: kafka/pom.xml."
    )

    if not TYPE_CHECKING:  # hidden from mypy, which keeps the plugin's typed signature

        def __init__(self, **values: Any) -> None:
            # pydantic's messages quote the offending input: a webhook secret or SASL password
            # in the wrong shape would be printed, logged and kept in tracebacks.
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise ConfigurationError(_describe(exc)) from None
            except SettingsError as exc:  # a list or map that is not JSON; names the field only
                message = f"invalid settings: {exc} (lists and maps are JSON)"
                raise ConfigurationError(message) from None

    def resolved_topics_dir(self) -> Path:
        return _folder(self.topics_dir, "EVENTRULES_TOPICS_DIR", "topics")

    def resolved_templates_dir(self) -> Path:
        return _folder(self.templates_dir, "EVENTRULES_TEMPLATES_DIR", "config/templates")

    def limits(self) -> Limits:
        """The input bounds these settings ask for (install them with ``set_limits``)."""
        return Limits(**{name: getattr(self, name) for name in Limits.__dataclass_fields__})

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
        if self.ssl_certificate_location:
            config["ssl.certificate.location"] = self.ssl_certificate_location
        if self.ssl_key_location:
            config["ssl.key.location"] = self.ssl_key_location
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config

    def reply_topic_patterns(self) -> list[str]:
        """Where rule replies may go: the configured globs, or the results and replies topics."""
        return self.rules_reply_topics or [
            self.topic("rules.results"),
            self.topic("rules.replies.*"),
        ]


def _folder(given: Path | None, variable: str, shipped: str) -> Path:
    if given is not None:
        if not given.is_dir():
            raise ConfigurationError(f"{variable}={given} is not a folder")
        return given
    found = find_project_file(shipped)
    if found is None or not found.is_dir():
        raise ConfigurationError(f"the shipped {shipped}/ was not found; set {variable}")
    return found
