"""A single-node Apache Kafka 4.x broker for development, tests and CI, run with plain ``java``.

The broker's jars come from Maven Central through the repository's ``kafka/pom.xml``; the broker
runs in KRaft combined mode (broker and controller in one JVM) on 127.0.0.1. ``start`` is
idempotent: a broker that already answers on the port is reused. Readiness is judged by a real
client fetching cluster metadata, never by sleeping.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from eventrules.errors import BrokerUnavailableError, ConfigurationError
from eventrules.settings import SHIPPED_DIR, Settings, find_project_file

__all__ = ["BrokerSecurity", "LocalBroker", "wait_for_broker"]

# Brokers started by this process, kept so they can be waited on (and are not reported as
# leaked by Popen's finaliser); a broker started by an earlier CLI call is found by its pid file.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}

# Connection-refused chatter while polling a broker that is still starting is expected noise.
_PROBE_LOGGER = logging.getLogger("eventrules.kafka.localbroker.probe")
_PROBE_LOGGER.addHandler(logging.NullHandler())
_PROBE_LOGGER.propagate = False

_LOG4J_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def wait_for_broker(
    bootstrap_servers: str, *, timeout: float = 60.0, client_config: dict[str, Any] | None = None
) -> None:
    """Block until the broker at ``bootstrap_servers`` returns metadata naming a broker."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    config.update(client_config or {})
    admin = AdminClient(config, logger=_PROBE_LOGGER)
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if metadata.brokers and metadata.controller_id is not None:
                return
            last_error = "metadata without brokers"
        except Exception as exc:
            last_error = str(exc)
        time.sleep(0.25)
    raise BrokerUnavailableError(
        f"no Kafka broker answered at {bootstrap_servers} within {timeout:.0f}s ({last_error})"
    )


def _jars_folder(pom: Path) -> Path:
    """target/dependency beside a checkout's pom; the user's cache for the installed one, so
    ~45 MB of jars never land in site-packages (where uninstalling would leave them behind)."""
    if not pom.is_relative_to(SHIPPED_DIR):
        return pom.parent / "target" / "dependency"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]  # a new pom, a new folder
    return cache / "eventrules" / f"kafka-jars-{digest}"


def _random_cluster_id() -> str:
    # What `kafka-storage random-uuid` prints: URL-safe base64 of 16 random bytes, unpadded.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True)
class BrokerSecurity:
    """Authenticated listeners for a broker: SASL/SCRAM over TLS on ``port`` (the bootstrap
    port) and mutual TLS on ``mtls_port``, with the StandardAuthorizer (ACLs; nothing is
    allowed without one). ``keystore`` is a PEM file holding the broker's unencrypted PKCS#8 key
    and its certificate (SAN 127.0.0.1); ``truststore`` the CA that signed the broker's and the
    clients' certificates. A client certificate's CN is its principal (``User:<CN>``).
    ``scram_users`` (name -> password) are created when the storage is formatted; ``admin`` is
    one of them and the super user the broker itself talks as."""

    keystore: Path
    truststore: Path
    mtls_port: int
    scram_users: dict[str, str]
    admin: str = "admin"
    mechanism: str = "SCRAM-SHA-512"

    def client_config(self, user: str) -> dict[str, Any]:
        """librdkafka settings of a SCRAM client ``user`` (SASL_SSL)."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": self.mechanism,
            "sasl.username": user,
            "sasl.password": self.scram_users[user],
            "ssl.ca.location": str(self.truststore),
        }

    def properties(self, port: int, controller_port: int) -> dict[str, str]:
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="{self.admin}" password="{self.scram_users[self.admin]}";'
        )
        return {
            "listeners": (
                f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{self.mtls_port},"
                f"CONTROLLER://127.0.0.1:{controller_port}"
            ),
            "advertised.listeners": (
                f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{self.mtls_port}"
            ),
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": ("SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT"),
            "sasl.enabled.mechanisms": self.mechanism,
            "sasl.mechanism.inter.broker.protocol": self.mechanism,
            f"listener.name.sasl_ssl.{self.mechanism.lower()}.sasl.jaas.config": jaas,
            "listener.name.ssl.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore),
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            # ANONYMOUS: the broker half of this one JVM calling its controller half on the
            # loopback-only PLAINTEXT controller listener, which serves no client requests.
            "super.users": f"User:{self.admin};User:ANONYMOUS",
        }

    def format_arguments(self) -> list[str]:
        return [
            arg
            for name, password in sorted(self.scram_users.items())
            for arg in ("--add-scram", f"{self.mechanism}=[name={name},password={password}]")
        ]


@dataclass
class LocalBroker:
    """A broker process owned by this project, identified by its data directory."""

    port: int = 9092
    controller_port: int = 9093
    data_dir: Path = Path(".eventrules/kafka")
    heap: str = "512m"
    pom: Path | None = None
    security: BrokerSecurity | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        return cls(
            port=settings.broker_port,
            controller_port=settings.controller_port,
            data_dir=settings.broker_data_dir,
            heap=settings.broker_heap,
            pom=settings.kafka_pom,
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def _pom(self) -> Path:
        pom = self.pom or find_project_file("kafka/pom.xml")
        if pom is None or not pom.is_file():
            raise ConfigurationError(
                "kafka/pom.xml not found (neither installed nor in a checkout); "
                "set EVENTRULES_KAFKA_POM"
            )
        return pom.resolve()

    def jars_dir(self) -> Path:
        """Resolve the broker jars with Maven (once; later calls reuse the folder)."""
        pom = self._pom()
        jars = _jars_folder(pom)
        if not any(jars.glob("kafka_2.13-*.jar")):
            mvn = shutil.which("mvn")
            if mvn is None:
                raise ConfigurationError("Maven (mvn) is needed to fetch the Kafka broker jars")
            resolved = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={jars}",
                ],
                check=False,
            )
            if resolved.returncode != 0:
                raise ConfigurationError(f"Maven could not resolve the broker jars from {pom}")
        return jars

    def running_pid(self) -> int | None:
        """The pid of the broker this data directory belongs to, if that process is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # A zombie or a recycled pid is not our broker.
        cmdline = Path(f"/proc/{pid}/cmdline")
        with contextlib.suppress(OSError):
            if b"kafka.Kafka" not in cmdline.read_bytes():
                return None
        return pid

    def admin_config(self) -> dict[str, Any]:
        """Settings of a super-user client (empty for a PLAINTEXT broker)."""
        return self.security.client_config(self.security.admin) if self.security else {}

    def is_answering(self, timeout: float = 2.0) -> bool:
        try:
            wait_for_broker(
                self.bootstrap_servers, timeout=timeout, client_config=self.admin_config()
            )
        except BrokerUnavailableError:
            return False
        return True

    def _write_properties(self) -> Path:
        data = self.data_dir.resolve()
        properties = data / "server.properties"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # Let the log cleaner compact small test topics quickly.
            "log.cleaner.min.compaction.lag.ms": "0",
            "log.cleaner.backoff.ms": "1000",
        }
        if self.security is not None:
            lines.update(self.security.properties(self.port, self.controller_port))
        properties.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
        return properties

    def _java(
        self, jars: Path, main: str, *args: str, extra_jvm: list[str] | None = None
    ) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigurationError("java (17 or newer) is needed to run the local Kafka broker")
        log4j = self.data_dir.resolve() / "log4j2.properties"
        return [
            java,
            *(extra_jvm or []),
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.log_dir.resolve()}",
            "-cp",
            f"{jars}/*",
            main,
            *args,
        ]

    def start(self, *, timeout: float = 90.0) -> bool:
        """Start the broker unless one already answers; return True when this call started it."""
        if self.running_pid() is not None or self.is_answering(timeout=1.0):
            wait_for_broker(
                self.bootstrap_servers, timeout=timeout, client_config=self.admin_config()
            )
            return False
        jars = self.jars_dir()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J_PROPERTIES)
        properties = self._write_properties()
        if not (self.data_dir / "data" / "meta.properties").exists():
            with (self.log_dir / "format.log").open("wb") as format_log:
                formatted = subprocess.run(
                    self._java(
                        jars,
                        "kafka.tools.StorageTool",
                        "format",
                        "--standalone",
                        # `=` form: a generated id may start with "-".
                        f"--cluster-id={_random_cluster_id()}",
                        "-c",
                        str(properties),
                        *(self.security.format_arguments() if self.security else []),
                    ),
                    check=False,
                    stdout=format_log,
                    stderr=subprocess.STDOUT,
                )
            if formatted.returncode != 0:
                raise ConfigurationError(
                    f"formatting the broker storage failed; see {self.log_dir / 'format.log'}"
                )
        with (self.log_dir / "console.log").open("ab") as console:
            process = subprocess.Popen(
                self._java(
                    jars,
                    "kafka.Kafka",
                    str(properties),
                    extra_jvm=[
                        f"-Xms{self.heap}",
                        f"-Xmx{self.heap}",
                        "-XX:+UseG1GC",
                        "-Djava.awt.headless=true",
                    ],
                ),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: the broker outlives the CLI call that started it.
                start_new_session=True,
            )
        _STARTED[process.pid] = process
        self.pid_file.write_text(str(process.pid))
        try:
            wait_for_broker(
                self.bootstrap_servers, timeout=timeout, client_config=self.admin_config()
            )
        except BrokerUnavailableError:
            if process.poll() is not None:
                raise BrokerUnavailableError(
                    f"the broker exited with code {process.returncode}; see {self.log_dir}"
                ) from None
            raise
        return True

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the broker this data directory belongs to; return True when one was stopped."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit; a child of ours is also reaped so no zombie is left."""
    process = _STARTED.get(pid)
    if process is not None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        del _STARTED[pid]
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (ProcessLookupError, FileNotFoundError):
            return True
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return True  # exited; its parent (not us) reaps it
        time.sleep(0.1)
    return False
