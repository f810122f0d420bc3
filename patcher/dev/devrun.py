"""``make run``: the Lambda's main job, end to end, on this machine with nothing configured.

1. PostgreSQL: ``PATCHER_DATABASE_URL`` if set, else a cluster of our own under
   ``$PATCHER_DEV_DIR/pg`` (default ``.local/dev/pg``, git-ignored) on 127.0.0.1 port
   ``$PATCHER_DEV_PG_PORT`` (54329), created once, reused while it runs, data kept.
2. S3: a moto server on a free local port; ``migrations/`` uploaded to
   ``s3://stackflow-migrations/migrations/`` as the pipeline's ``aws s3 sync`` does.
3. ``patcher.aws.handler.lambda_handler`` driven with a Lambda-like context: a dry run, a migrate
   and a status, each result printed as the ``patcher`` CLI prints it (``patcher/cli/report.py``:
   a headline, a table of the migrations, the dry run's SQL as SQL); ``--json`` (``make run
   ARGS=--json``) prints the exact JSON results instead. Then how to connect with psql.

``python -m patcher.dev.devrun --stop`` stops the local cluster (its data stays).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUCKET = "stackflow-migrations"
PREFIX = "migrations/"
DBNAME = "stackflow"
DEFAULT_PORT = 54329
EVENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("dry run: what would change", {"action": "migrate", "dry_run": True}),
    ("migrate", {"action": "migrate"}),
    ("status", {"action": "status"}),
)


class LambdaContext:
    """What the Lambda runtime passes as ``context``, with a clock that can run fast.

    Remaining time is ``timeout_ms`` minus the real time elapsed since creation times ``speed``
    (``speed=20``: each real second counts as twenty), so tests reach a deadline quickly."""

    function_name = "StackFlowPatcher"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:StackFlowPatcher"
    log_group_name = "/aws/lambda/StackFlowPatcher"
    log_stream_name = "local"
    identity = None

    def __init__(
        self, timeout_ms: int = 900_000, *, speed: float = 1.0, client_context: Any = None
    ) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.client_context = client_context
        self._timeout_ms, self._speed = timeout_ms, speed
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (time.monotonic() - self._started) * 1000 * self._speed
        return max(0, int(self._timeout_ms - elapsed_ms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m patcher.dev.devrun", description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop the local PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print each exact JSON result")
    args = parser.parse_args(argv)
    dev_dir = Path(os.environ.get("PATCHER_DEV_DIR") or REPO / ".local" / "dev").resolve()
    port = int(os.environ.get("PATCHER_DEV_PG_PORT") or DEFAULT_PORT)
    if args.stop:
        return _stop(dev_dir)
    url = os.environ.get("PATCHER_DATABASE_URL", "").strip()
    try:
        database_url = url or _local_database(dev_dir, port)
    except RuntimeError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    server, endpoint = _start_s3()
    try:
        count = _upload(endpoint, REPO / "migrations")
        print(f"S3 emulator at {endpoint}: uploaded {count} files to s3://{BUCKET}/{PREFIX}")
        _configure(endpoint, database_url)
        ok = _drive_handler("json" if args.json else "text")
    finally:
        server.stop()
    shown = '"$PATCHER_DATABASE_URL"' if url else database_url  # never echo a password
    print(f"\nConnect with:  psql {shown}")
    if not url:
        stop = "python -m patcher.dev.devrun --stop"
        print(f"Stop the local PostgreSQL with:  {stop}  (data: {dev_dir})")
    return 0 if ok else 1


def _local_database(dev_dir: Path, port: int) -> str:
    """Start (or reuse) the persistent local cluster and make sure the database exists."""
    from patcher.dev.localpg import INSTALL_HINT, LocalCluster, default_run_as, find_bin_dir

    bin_dir = find_bin_dir(os.environ.get("PATH", ""))
    if bin_dir is None:
        raise RuntimeError(
            f"no PostgreSQL server binaries: {INSTALL_HINT}, or set PATCHER_DATABASE_URL"
        )
    cluster = LocalCluster(bin_dir, dev_dir / "pg", run_as=default_run_as())
    running = cluster.running_port()
    if running is not None:
        cluster.port = running
        print(f"PostgreSQL: reusing the local cluster on port {running} ({cluster.data})")
    else:
        if not cluster.initialized:
            dev_dir.mkdir(parents=True, exist_ok=True)
            dev_dir.chmod(0o755)  # the postgres OS user must reach pg/ below it
            cluster.initdb()
        if not cluster.start(port):
            raise RuntimeError(f"port {port} is taken; set PATCHER_DEV_PG_PORT to a free port")
        print(f"PostgreSQL: started the local cluster on port {port} ({cluster.data})")
    _ensure_database(cluster.dsn("postgres"), DBNAME)
    return cluster.dsn(DBNAME)


def _ensure_database(admin_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _stop(dev_dir: Path) -> int:
    from patcher.dev.localpg import LocalCluster, default_run_as, find_bin_dir

    bin_dir = find_bin_dir(os.environ.get("PATH", ""))
    cluster = LocalCluster(bin_dir or Path("/nonexistent"), dev_dir / "pg", run_as=default_run_as())
    if bin_dir is None or cluster.running_port() is None:
        print(f"no local PostgreSQL is running in {cluster.data}")
        return 0
    cluster.stop()
    print(f"stopped the local PostgreSQL (data kept in {cluster.data})")
    return 0


def _start_s3() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _upload(endpoint: str, directory: Path) -> int:
    """``aws s3 sync migrations/ s3://BUCKET/migrations/``: every file, by relative path."""
    import boto3

    client = boto3.session.Session(
        aws_access_key_id="devrun", aws_secret_access_key="devrun", region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for path in files:
        key = PREFIX + path.relative_to(directory).as_posix()
        client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    return len(files)


def _configure(endpoint: str, database_url: str) -> None:
    """The environment the deployed function has, pointed at the local services."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "PATCHER_DB_SECRET_ARN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "PATCHER_SOURCE": f"s3://{BUCKET}/{PREFIX}",
            "PATCHER_DATABASE_URL": database_url,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "devrun",
            "AWS_SECRET_ACCESS_KEY": "devrun",
            "AWS_SESSION_TOKEN": "devrun",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    # The printed results already hold every migration; the Powertools JSON lines would repeat
    # them between the results. Errors still show. POWERTOOLS_LOG_LEVEL=INFO make run: all lines.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def _drive_handler(fmt: str) -> bool:
    """Each event through the handler; its result as the CLI prints it (``fmt``: text, json)."""
    from patcher.aws.handler import lambda_handler  # only now: it reads the environment set above
    from patcher.cli.output import write_result

    ok = True
    for number, (title, event) in enumerate(EVENTS, 1):
        print(f"\n=== {number}/{len(EVENTS)} {title}: lambda_handler({json.dumps(event)})")
        result = lambda_handler(event, LambdaContext())
        sys.stdout.flush()
        write_result(result, fmt)
        ok = ok and bool(result["ok"])
    return ok


if __name__ == "__main__":
    sys.exit(main())
