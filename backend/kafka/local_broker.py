"""The local Apache Kafka broker: one KRaft node (broker and controller) on the loopback interface.

    python -m backend.kafka.local_broker start|stop|status

The broker runs from the jars `make setup` resolved with Maven, in the background, with its
data, pid file and log file under ``<state dir>/kafka/`` (``TWEETSTREAM_STATE_DIR``,
default ``.state/`` in the project). Its data survives stop and start.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from backend.runtime import processes
from backend.runtime.jars import JavaSetupError, java_executable, kafka_broker_classpath
from backend.runtime.private import private_folder
from backend.settings import PROJECT_ROOT, Settings, load_settings

LOG4J_CONFIG = PROJECT_ROOT / "jvm" / "log4j2.properties"
LOG4J_TOOLS_CONFIG = PROJECT_ROOT / "jvm" / "log4j2-tools.properties"
NODE_ID = 1
# Variables the broker may inherit: it needs no secret of the console's.
INHERITED_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME")
# The log file is appended to at every start; past this size the old one is kept as broker.log.1.
MAX_LOG_BYTES = 50 * 1024 * 1024

Progress = Callable[[str], None]


class BrokerError(RuntimeError):
    """The local broker could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class LocalBroker:
    """Where the local broker listens and keeps its files."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    # More server.properties lines, which win over the defaults (a test's SASL listener,
    # a shorter retention check); none for the console's own broker.
    extra_properties: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold a JAAS password

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        return cls(
            state_dir=settings.state_dir,
            host=settings.kafka_host,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            heap=settings.kafka_heap,
        )

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def data_dir(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.kafka_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.kafka_dir / "broker.log"

    @property
    def lock_file(self) -> Path:
        return self.kafka_dir / "broker.lock"

    @property
    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    bootstrap: str
    pid: int | None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def render_server_properties(broker: LocalBroker) -> str:
    """The broker's configuration: a single combined broker+controller node, replication 1."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        # A static quorum of one voter: the port may change between runs without a re-format.
        "controller.quorum.voters": f"{NODE_ID}@{broker.host}:{broker.controller_port}",
        "listeners": f"PLAINTEXT://{broker.host}:{broker.port},CONTROLLER://{broker.host}:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{broker.host}:{broker.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(broker.data_dir),
        # Internal topics on a one-node cluster: replication 1, or nothing can be created.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "default.replication.factor": 1,
        "num.partitions": 1,
        # Topics are created on purpose (Setup page, backend.kafka.topics): a mistyped topic name
        # in a producer is an error, not a new empty topic.
        "auto.create.topics.enable": "false",
        # No reason to wait for more group members on a one-machine setup.
        "group.initial.rebalance.delay.ms": 0,
        "log.retention.hours": 168,
        "num.network.threads": 2,
        "num.io.threads": 4,
    }
    settings.update(dict(broker.extra_properties))
    lines = ["# Written by backend/kafka/local_broker.py at every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def java_options(broker: LocalBroker) -> list[str]:
    return [
        f"-Xms{broker.heap}",
        f"-Xmx{broker.heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
    ]


def broker_command(broker: LocalBroker, java: str, classpath: str) -> list[str]:
    return [java, *java_options(broker), "-cp", classpath, "kafka.Kafka", str(broker.properties_file)]


def tool_command(main_class: str, *args: str) -> list[str]:
    """A command line for one of Kafka's Java tools, e.g. ``org.apache.kafka.tools.TopicCommand``.

    The tool's own output is on stdout; its log, warnings only, on stderr.
    """
    return [
        java_executable(),
        f"-Dlog4j2.configurationFile={LOG4J_TOOLS_CONFIG}",
        "-cp",
        kafka_broker_classpath(),
        main_class,
        *args,
    ]


def format_command(broker: LocalBroker, cluster_id: str) -> list[str]:
    """Kafka's storage tool, formatting the data directory of a new one-node KRaft cluster."""
    return tool_command(
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(broker.properties_file),
        "--ignore-formatted",
    )


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Never one that starts with "-": the storage tool would read it as an option and fail
    ("--cluster-id: expected one argument"), once in 64 starts. Kafka's own Uuid.randomUuid
    draws again in that case too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def _broker_env() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}


def status(broker: LocalBroker) -> BrokerStatus:
    record = processes.read_pid_file(broker.pid_file)
    if record is not None and processes.is_alive(record):
        return BrokerStatus(running=True, bootstrap=str(record.info.get("bootstrap", broker.bootstrap)), pid=record.pid)
    return BrokerStatus(running=False, bootstrap=broker.bootstrap, pid=None)


def port_in_use(host: str, port: int) -> bool:
    """True when nothing can listen on host:port (the same check the broker's own bind makes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports_free(broker: LocalBroker) -> None:
    for port, variable in (
        (broker.port, "TWEETSTREAM_KAFKA_PORT"),
        (broker.controller_port, "TWEETSTREAM_KAFKA_CONTROLLER_PORT"),
    ):
        if port_in_use(broker.host, port):
            owners = ", ".join(processes.describe_pid(pid) for pid in processes.listener_pids(broker.host, port))
            by_whom = f" by {owners}" if owners else ""
            raise BrokerError(
                f"port {port} on {broker.host} is already in use{by_whom}: "
                f"stop that process or choose another port with {variable}"
            )


def log_tail(broker: LocalBroker, lines: int = 20) -> str:
    try:
        return "\n".join(broker.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _format_storage(broker: LocalBroker) -> None:
    try:
        result = subprocess.run(
            format_command(broker, new_cluster_id()),
            capture_output=True,
            text=True,
            timeout=120,
            env=_broker_env(),
        )
    except subprocess.TimeoutExpired as error:
        raise BrokerError(f"formatting the broker's storage in {broker.data_dir} took over 120 s") from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise BrokerError("formatting the broker's storage failed:\n" + "\n".join(output))


def wait_until_ready(broker: LocalBroker, record: processes.ProcessRecord, timeout: float) -> None:
    """Wait until a client fetches metadata from the broker; fail early if the JVM exits."""
    admin = AdminClient(
        {
            "bootstrap.servers": broker.bootstrap,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 500,
            # Connection refused is expected while the JVM starts: do not print it.
            "error_cb": lambda _error: None,
            "log_level": 0,
        }
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(record):
            raise BrokerError(f"the broker exited during start; last lines of {broker.log_file}:\n{log_tail(broker)}")
        try:
            metadata = admin.list_topics(timeout=1.0)
            if metadata.brokers:
                return
        except KafkaException:  # not listening yet
            pass
        time.sleep(0.2)
    raise BrokerError(
        f"the broker did not answer on {broker.bootstrap} within {timeout:.0f} s; "
        f"last lines of {broker.log_file}:\n{log_tail(broker)}"
    )


def start(
    broker: LocalBroker, timeout: float = 90.0, progress: Progress = lambda _msg: None
) -> tuple[BrokerStatus, bool]:
    """Start the broker unless it runs already. Returns its status and whether it was already running."""
    with processes.exclusive(broker.lock_file):
        return _start_locked(broker, timeout, progress)


def _rotate_log(broker: LocalBroker) -> None:
    if broker.log_file.exists() and broker.log_file.stat().st_size > MAX_LOG_BYTES:
        broker.log_file.replace(broker.log_file.with_name(broker.log_file.name + ".1"))


def _start_locked(broker: LocalBroker, timeout: float, progress: Progress) -> tuple[BrokerStatus, bool]:
    current = status(broker)
    if current.running:
        return current, True

    try:
        java = java_executable()
        classpath = kafka_broker_classpath()
    except JavaSetupError as error:
        raise BrokerError(str(error)) from error
    check_ports_free(broker)

    private_folder(broker.state_dir)  # the console's state folder: its owner's only
    broker.kafka_dir.mkdir(parents=True, exist_ok=True)
    # Readable by its owner only, before anything is in it: a test's SASL users may be.
    broker.properties_file.touch(mode=0o600)
    broker.properties_file.chmod(0o600)
    broker.properties_file.write_text(render_server_properties(broker))
    if not broker.is_formatted:
        progress(f"formatting KRaft storage in {broker.data_dir}")
        _format_storage(broker)

    progress(f"starting the broker on {broker.bootstrap}")
    _rotate_log(broker)
    record = processes.spawn_detached(
        broker_command(broker, java, classpath),
        log_file=broker.log_file,
        env=_broker_env(),
        cwd=broker.kafka_dir,
        info={"bootstrap": broker.bootstrap},
    )
    processes.write_pid_file(broker.pid_file, record)
    progress(f"waiting for the broker to answer (pid {record.pid})")
    try:
        wait_until_ready(broker, record, timeout)
    except BrokerError:
        processes.terminate(record, timeout=10)
        broker.pid_file.unlink(missing_ok=True)
        raise
    return BrokerStatus(running=True, bootstrap=broker.bootstrap, pid=record.pid), False


def stop(broker: LocalBroker, timeout: float = 60.0) -> str:
    """Stop the broker: SIGTERM (a clean shutdown), SIGKILL after ``timeout`` seconds.

    Returns "terminated", "killed" or "not running".
    """
    with processes.exclusive(broker.lock_file):
        record = processes.read_pid_file(broker.pid_file)
        outcome = processes.terminate(record, timeout) if record is not None else "not running"
        broker.pid_file.unlink(missing_ok=True)
        return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.kafka.local_broker",
        description="Start, stop or query the local Kafka broker (one KRaft node on 127.0.0.1). "
        "Ports and the state directory come from TWEETSTREAM_KAFKA_PORT, "
        "TWEETSTREAM_KAFKA_CONTROLLER_PORT and TWEETSTREAM_STATE_DIR.",
    )
    parser.add_argument(
        "command",
        choices=("start", "stop", "status"),
        help="start: start in the background and wait until it answers; stop: shut down cleanly; "
        "status: one line of JSON, exit 0 when running and 3 when not",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (start: 90, stop: 60)")
    args = parser.parse_args(argv)

    try:
        broker = LocalBroker.from_settings(load_settings())
    except ValueError as error:
        say(f"error: invalid settings: {error}")
        return 2

    if args.command == "status":
        current = status(broker)
        print(current.to_json())
        return 0 if current.running else 3

    if args.command == "start":
        began = time.monotonic()
        try:
            current, already = start(
                broker,
                timeout=args.timeout or 90.0,
                progress=lambda message: say(f"… {message}"),
            )
        except BrokerError as error:
            say(f"error: {error}")
            return 1
        elapsed = time.monotonic() - began
        if already:
            say(f"Kafka broker already running at {current.bootstrap} (pid {current.pid}); nothing to do")
        else:
            say(f"Kafka broker started in {elapsed:.1f} s (pid {current.pid}), log: {broker.log_file}")
        print(current.bootstrap)
        return 0

    began = time.monotonic()
    outcome = stop(broker, timeout=args.timeout or 60.0)
    elapsed = time.monotonic() - began
    if outcome == "not running":
        say("Kafka broker is not running; nothing to do")
    elif outcome == "killed":
        say(f"Kafka broker did not stop within the timeout and was killed (SIGKILL) after {elapsed:.1f} s")
    else:
        say(f"Kafka broker stopped in {elapsed:.1f} s")
    return 0


def say(message: str) -> None:
    """Messages for the person at the terminal go to stderr; stdout carries the result only."""
    print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
