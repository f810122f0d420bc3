"""Verified TLS and RDS IAM auth against a real PostgreSQL with ``ssl=on``.

A throwaway cluster (initdb/pg_ctl as the postgres OS user, ``patcher.dev.localpg``) serves a
server certificate made here for 127.0.0.1 and localhost, signed by a CA made here; its
pg_hba.conf accepts TCP connections only over TLS (``hostssl``, no ``host`` line), so no
password can travel in the clear. Shown:

- ``verify-full`` with the right CA connects (by address and by name);
- a wrong CA, a wrong host name (the server's certificate names another host) and a plain-text
  server each give a ``DatabaseUnavailable`` naming TLS; the plain-text "server" is a socket
  that answers the SSLRequest with "N" as ``ssl=off`` does, and records what the client sent:
  the 8-byte SSLRequest and nothing else (no startup packet, no password);
- IAM auth: a token generated with test credentials (signed locally) is the password of a role
  on the TLS server; a migrate through ``lambda_handler`` with ``PATCHER_DB_IAM_AUTH=true``
  connects with it, and the token appears in no log line and no result.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from patcher.aws import handler
from patcher.core.errors import DatabaseUnavailable
from patcher.db import PostgresBackend, iam
from patcher.db.iam import auth_token
from patcher.dev.devrun import LambdaContext
from patcher.dev.localpg import LocalCluster, default_run_as, find_bin_dir, free_port
from tests.fixtures.tls import Issued, make_ca, make_server_cert

pytestmark = pytest.mark.db

PASSWORD = "tls-test-pw-7f3a"
USER = "runner"
DBNAME = "app"
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class TlsServer:
    cluster: LocalCluster
    port: int
    ca: Path  # the CA that signed the server's certificate
    wrong_ca: Path  # a CA that did not
    certs: dict[str, Issued]

    def url(self, host: str = "127.0.0.1", user: str = USER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{host}:{self.port}/{DBNAME}"

    def admin(self, sql: str) -> None:
        """Run SQL as the superuser over the Unix socket (trust; TCP is TLS-only)."""
        with psycopg.connect(
            host=str(self.cluster.workdir), port=self.port, user="postgres", dbname="postgres",
            autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(sql)

    def use_certificate(self, name: str) -> None:
        """Serve ``certs[name]`` from now on (PostgreSQL reloads TLS files on SIGHUP)."""
        self.admin(f"ALTER SYSTEM SET ssl_cert_file = '{name}.crt'")
        self.admin(f"ALTER SYSTEM SET ssl_key_file = '{name}.key'")
        self.admin("SELECT pg_reload_conf()")
        for _ in range(100):  # the postmaster rereads its files asynchronously
            with psycopg.connect(
                host=str(self.cluster.workdir), port=self.port, user="postgres",
                dbname="postgres",
            ) as conn:  # fmt: skip
                row = conn.execute("SHOW ssl_cert_file").fetchone()
            if row and row[0] == f"{name}.crt":
                return
            time.sleep(0.02)
        raise AssertionError(f"the server did not switch to {name}.crt")


def _owned_by_postgres(path: Path, run_as: str | None) -> None:
    if run_as is not None:
        shutil.chown(path, user=run_as, group=run_as)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bin_dir = find_bin_dir(__import__("os").environ.get("PATH", ""))
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries not found (initdb, pg_ctl): install postgresql")
    run_as = default_run_as()
    workdir = Path(tempfile.mkdtemp(prefix="patcher-tls-"))
    cluster = LocalCluster(bin_dir, workdir, run_as=run_as)
    cluster.initdb()
    ca, wrong = make_ca("StackFlow test CA", "StackFlow"), make_ca("Other CA", "Elsewhere")
    certs = {
        "server": make_server_cert(ca, ["127.0.0.1", "localhost"]),
        "other": make_server_cert(ca, ["db.other.example"]),  # right CA, another host
    }
    for name, issued in certs.items():
        for path in issued.write(cluster.data, name):  # key mode 0600
            _owned_by_postgres(path, run_as)
    (workdir / "ca.crt").write_bytes(ca.cert_pem)
    (workdir / "wrong-ca.crt").write_bytes(wrong.cert_pem)
    # TCP only over TLS; the superuser only over the socket.
    hba = cluster.data / "pg_hba.conf"
    hba.write_text(
        "local   all  all                  trust\n"
        "hostssl all  all  127.0.0.1/32    scram-sha-256\n"
        "hostssl all  all  ::1/128         scram-sha-256\n"
    )
    # ssl_cert_file/ssl_key_file keep their defaults (server.crt/server.key in the data
    # directory): set on the command line they could not be changed by ALTER SYSTEM.
    # password_encryption: md5 by default before PG 14, and an md5 hash cannot pass scram.
    settings = ("ssl=on", "fsync=off", "password_encryption=scram-sha-256")
    for _ in range(5):
        if cluster.start(free_port(), settings):
            break
    else:
        pytest.fail("no free port for the TLS cluster")
    assert cluster.port is not None
    server = TlsServer(cluster, cluster.port, workdir / "ca.crt", workdir / "wrong-ca.crt", certs)
    server.admin(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    server.admin(f"CREATE DATABASE {DBNAME} OWNER {USER}")
    try:
        yield server
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(workdir, ignore_errors=True)


def _connect(url: str, sslmode: str, sslrootcert: Path | str | None) -> PostgresBackend:
    return PostgresBackend.connect(
        url,
        application_name="patcher:tls-test",
        connect_timeout=5,
        sslmode=sslmode,
        sslrootcert=str(sslrootcert) if sslrootcert else None,
    )


# --------------------------------------------------------------------------- verified TLS


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_verify_full_with_the_right_ca_connects(tls_server: TlsServer, host: str) -> None:
    backend = _connect(tls_server.url(host), "verify-full", tls_server.ca)
    try:
        info = backend.conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert info is not None and info[0] is True, info
        assert str(info[1]).startswith("TLSv1.")
    finally:
        backend.close()


def _refused(url: str, sslmode: str, sslrootcert: Path | str | None) -> str:
    with pytest.raises(DatabaseUnavailable) as caught:
        _connect(url, sslmode, sslrootcert).close()
    message = caught.value.message
    assert "TLS" in message, message
    assert PASSWORD not in message
    return message


def test_a_wrong_ca_is_refused_naming_tls(tls_server: TlsServer) -> None:
    message = _refused(tls_server.url(), "verify-full", tls_server.wrong_ca)
    assert "certificate" in message and "PATCHER_DB_SSLROOTCERT" in message


def test_verify_ca_also_refuses_a_wrong_ca(tls_server: TlsServer) -> None:
    _refused(tls_server.url(), "verify-ca", tls_server.wrong_ca)


@pytest.fixture
def other_host_certificate(tls_server: TlsServer) -> Iterator[None]:
    tls_server.use_certificate("other")
    try:
        yield
    finally:
        tls_server.use_certificate("server")


def test_a_wrong_host_name_is_refused_naming_tls(
    tls_server: TlsServer, other_host_certificate: None
) -> None:
    message = _refused(tls_server.url("localhost"), "verify-full", tls_server.ca)
    assert "localhost" in message and "db.other.example" in message
    # verify-ca checks the chain only: the same server is accepted (why verify-full is default)
    _connect(tls_server.url("localhost"), "verify-ca", tls_server.ca).close()


class PlainTextServer:
    """Answers every SSLRequest with "N" (what ``ssl=off`` PostgreSQL does) and keeps every
    byte a client sends, to show that the client sent nothing after it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    data = conn.recv(8)
                    if data == SSL_REQUEST:
                        conn.sendall(b"N")
                    while chunk := conn.recv(65536):
                        data += chunk
                except OSError:
                    pass
                self.received.append(data)

    def close(self) -> None:
        self.sock.close()


def test_a_plain_text_server_is_refused_and_gets_no_password(tls_server: TlsServer) -> None:
    server = PlainTextServer()
    try:
        url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{server.port}/{DBNAME}"
        message = _refused(url, "verify-full", tls_server.ca)
        assert "does not support SSL" in message or "TLS" in message
        server.thread.join(timeout=0.5)
    finally:
        server.close()
    assert server.received, "the client never connected"
    assert all(data == SSL_REQUEST for data in server.received), server.received
    assert not any(PASSWORD.encode() in data for data in server.received)


def test_the_real_server_refuses_tcp_without_tls(tls_server: TlsServer) -> None:
    """pg_hba has no ``host`` line: a client that would send a password in the clear is
    refused before authentication (belt and braces to the client's sslmode)."""
    with pytest.raises(psycopg.OperationalError, match=r"no encryption|SSL off"):
        psycopg.connect(tls_server.url(), sslmode="disable", connect_timeout=5).close()


# --------------------------------------------------------------------------- IAM auth


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    iam._rds_client.cache_clear()  # a client made by an earlier test holds its credentials


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", buffer)
    return buffer


def test_a_token_is_signed_locally_for_host_port_and_user(
    aws_test_credentials: None, tls_server: TlsServer
) -> None:
    token = auth_token(f"postgresql://iam_runner@db.example.com:6543/{DBNAME}")
    assert token.startswith("db.example.com:6543/?Action=connect&DBUser=iam_runner&")
    assert "X-Amz-Signature=" in token and "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE" in token
    # A new token per connection: a second one (a second later at most) is another string.
    assert auth_token(f"postgresql://iam_runner@db.example.com:6543/{DBNAME}").startswith(
        "db.example.com:6543/?Action=connect&DBUser=iam_runner&"
    )


def test_migrate_with_an_iam_token_through_the_handler(
    tls_server: TlsServer,
    aws_test_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # The token the function will make: same host, port, user and clock minute (SigV4
    # presigned URLs are stable within the second; the role's password is set to it).
    iam_user = "iam_runner"
    base = f"postgresql://{iam_user}@localhost:{tls_server.port}/{DBNAME}"
    tokens: list[str] = []

    import patcher.db.iam as iam

    real = iam.auth_token

    def recording(conninfo: str, **kwargs: Any) -> str:
        token = real(conninfo, **kwargs)
        # The server plays RDS: this token is the role's password (RDS checks the signature).
        tls_server.admin(f"ALTER ROLE {iam_user} PASSWORD '{token}'")
        tokens.append(token)
        return token

    tls_server.admin(f"DROP ROLE IF EXISTS {iam_user}")
    tls_server.admin(f"CREATE ROLE {iam_user} LOGIN")
    tls_server.admin(f"GRANT CREATE, CONNECT ON DATABASE {DBNAME} TO {iam_user}")
    tls_server.admin(f"ALTER DATABASE {DBNAME} OWNER TO {iam_user}")
    monkeypatch.setattr(iam, "auth_token", recording)
    (tmp_path / "0001_t.up.sql").write_text("CREATE TABLE t (id int);\n")
    (tmp_path / "0001_t.down.sql").write_text("DROP TABLE t;\n")
    env = {
        "PATCHER_SOURCE": str(tmp_path),
        "PATCHER_DATABASE_URL": base,  # no password anywhere
        "PATCHER_DB_IAM_AUTH": "true",
        "PATCHER_DB_SSLMODE": "verify-full",
        "PATCHER_DB_SSLROOTCERT": str(tls_server.ca),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PATCHER_DB_SECRET_ARN", raising=False)
    results = [
        handler.lambda_handler({"action": "migrate"}, LambdaContext()),
        handler.lambda_handler({"action": "status"}, LambdaContext()),
    ]
    assert results[0]["status"] == "applied", results[0]
    assert results[1]["current_version"] == 1
    assert len(tokens) >= 2  # one per connection (one per invocation here)
    everything = log_lines.getvalue() + capsys.readouterr().out + json.dumps(results)
    for token in tokens:
        signature = token.rpartition("X-Amz-Signature=")[2]
        assert token not in everything and signature not in everything


def test_iam_auth_refused_by_a_wrong_ca_leaks_no_token(
    tls_server: TlsServer, aws_test_credentials: None
) -> None:
    token = auth_token(tls_server.url(user="iam_runner", password="x"))
    with pytest.raises(DatabaseUnavailable) as caught:
        PostgresBackend.connect(
            f"postgresql://iam_runner@127.0.0.1:{tls_server.port}/{DBNAME}",
            application_name="patcher:tls-test",
            connect_timeout=5,
            sslmode="verify-full",
            sslrootcert=str(tls_server.wrong_ca),
            iam_auth=True,
        )
    assert "TLS" in caught.value.message
    assert token.rpartition("X-Amz-Signature=")[2] not in caught.value.message
