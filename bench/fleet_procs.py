"""Benchmark 6's second measurement: each invocation in its own execution environment.

In bench/fleet.py's first measurement every invocation runs in the bench process, on threads
that share one GIL with moto's Step Functions interpreter; AWS runs each concurrent invocation
in its own execution environment (one container per concurrent invocation, warm after its
first). Here the state machine still runs in moto's interpreter in this process, but the patcher
function's invocations go to worker processes (bench/lambda_worker.py): an idle one if there is
one, else a new one (a cold start, taken out of the figures by an untimed fleet run first), each
kept warm between invocations as a Lambda container is. The migrations and the targets' secrets
live in a moto server process the workers reach over HTTP (AWS's S3 and Secrets Manager, not
this process's mock); the summary function still runs in this process. PostgreSQL and every
process share this machine's cores, as before.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from bench.common import ROOT

REGION = "us-east-1"
MIGRATIONS_PREFIX = "migrations/"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
}  # fmt: skip


@dataclass
class Worker:
    process: subprocess.Popen[str]
    stdin: IO[str]
    stdout: IO[str]


@dataclass
class Environments:
    """Warm execution environments: a worker process per concurrent invocation."""

    idle: list[Worker] = field(default_factory=list)
    every: list[Worker] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _start(self) -> Worker:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PATCHER_", "AWS_", "POWERTOOLS_"))}  # fmt: skip
        env["PYTHONPATH"] = str(ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.lambda_worker"], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        worker = Worker(process, process.stdin, process.stdout)
        with self.lock:
            self.every.append(worker)
        return worker

    def invoke(self, env: dict[str, str], payload: Any, custom: Any) -> tuple[Any, float]:
        """The handler's result and CPU seconds, from an idle environment or a new one."""
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        worker = worker or self._start()
        worker.stdin.write(json.dumps({"env": env, "payload": payload, "custom": custom}) + "\n")
        worker.stdin.flush()
        line = worker.stdout.readline()
        if not line:
            raise SystemExit(f"bench fleet: a worker died (exit {worker.process.wait()})")
        answer = json.loads(line)
        with self.lock:
            self.idle.append(worker)
        return answer["result"], float(answer["cpu"])

    def close(self) -> None:
        for worker in self.every:
            worker.stdin.close()
            worker.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """A moto server in its own process (AWS's S3 and Secrets Manager for the workers)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise SystemExit("bench fleet: the moto server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Remote:
    """The moto server: a migrations bucket, and a secret per target."""

    endpoint: str
    pid: int
    bucket: str = field(default_factory=lambda: f"mig-{uuid.uuid4().hex[:8]}")

    def cpu(self) -> float:
        """CPU seconds the moto server has used (its own, from /proc; 0.0 without /proc)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def put_migrations(self, migrations: dict[str, str]) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=self.bucket)
        for name, text in migrations.items():
            s3.put_object(Bucket=self.bucket, Key=MIGRATIONS_PREFIX + name, Body=text.encode())

    def create_secret(self, name: str, dsn: str) -> str:
        from tests.e2e.sfnkit import secret_of

        made = self.client("secretsmanager").create_secret(
            Name=f"bench/{uuid.uuid4().hex[:8]}/{name}", SecretString=secret_of(dsn)
        )
        return str(made["ARN"])

    def function_env(self, targets: dict[str, str]) -> dict[str, str]:
        """The function's environment, as the template sets it (on the moto server)."""
        return dict(
            FAKE_AWS,
            AWS_ENDPOINT_URL=self.endpoint,
            PATCHER_TARGETS=json.dumps(targets),
            PATCHER_SOURCE=f"s3://{self.bucket}/{MIGRATIONS_PREFIX}",
            PATCHER_LOCK_WAIT_SECONDS="1",
        )


def hook(
    aws: Any, envs: Environments, env: dict[str, str], cpu: list[float]
) -> Callable[..., bytes]:
    """LambdaFunction.invoke: the patcher function in an execution environment, the summary
    function as tests/e2e/sfnkit.py runs it (in this process)."""
    from tests.e2e.sfnkit import SUMMARY_FUNCTION, hook_lambda

    in_process = hook_lambda(aws)

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        if self.function_name == SUMMARY_FUNCTION:
            return in_process(self, body, request_headers, response_headers)
        payload = json.loads(body)
        header = request_headers.get("x-amz-client-context") if request_headers else None
        custom = json.loads(base64.b64decode(header)).get("custom") if header else None
        result, spent = envs.invoke(env, payload, custom)
        with aws.lock:
            aws.invocations.append(payload)
            aws.results.append(result)
            cpu.append(spent)
        return json.dumps(result).encode()

    return invoke


@contextlib.contextmanager
def world(
    server: Any, n: int, remote: Remote, envs: Environments
) -> Iterator[tuple[Any, Any, list[str], list[float]]]:
    """bench/fleet.py's world with the invocations sent to ``envs``."""
    from moto.awslambda.models import LambdaFunction

    from tests.e2e.sfnkit import sfn_world

    patch = pytest.MonkeyPatch()
    gen = sfn_world(patch, remote.endpoint)
    aws = next(gen)
    created = [server.create_database() for _ in range(n)]
    try:
        names = [f"db{i:02d}" for i in range(n)]
        targets = {
            name: remote.create_secret(name, server.dsn_for(db))
            for name, db in zip(names, created, strict=True)
        }
        cpu: list[float] = []
        patch.setattr(LambdaFunction, "invoke", hook(aws, envs, remote.function_env(targets), cpu))
        yield aws, aws.state_machine(targets), names, cpu
    finally:
        next(gen, None)
        patch.undo()
        for db in created:
            server.drop_database(db)


@contextlib.contextmanager
def environments(migrations: dict[str, str]) -> Iterator[tuple[Remote, Environments]]:
    """The moto server with the migrations, and the pool of environments (closed after)."""
    with moto_server() as (endpoint, pid):
        remote = Remote(endpoint, pid)
        remote.put_migrations(migrations)
        envs = Environments()
        try:
            yield remote, envs
        finally:
            envs.close()
