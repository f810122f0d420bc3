"""scripts/rds_ca.py: the CA bundle check that guards what the package trusts.

On certificates made here (no network): an "Amazon RDS"-named CA passes; a foreign CA, an
expired or not-yet-valid one, a leaf, a private key, non-PEM and an empty file fail. And
build_package refuses to start without a valid bundle unless --insecure-no-ca.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures.tls import make_ca, make_server_cert

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "rds_ca.py"
BUILD = REPO / "scripts" / "build_package.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rds_ca", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rds_ca = _load()


def rds_bundle() -> bytes:
    """Two RDS-looking roots, as the real bundle is a concatenation of many."""
    return make_ca().cert_pem + make_ca("Amazon RDS eu-west-9 Root CA RSA2048 G1").cert_pem


def test_an_rds_bundle_passes(tmp_path: Path) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(rds_bundle())
    bundle = rds_ca.check_file(path)
    assert len(bundle.certificates) == 2
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 Amazon RDS CA certificates" in proc.stdout


def _problems(data: bytes, now: datetime | None = None) -> str:
    with pytest.raises(rds_ca.BundleError) as caught:
        rds_ca.check_bundle(data, path="bundle.pem", now=now)
    assert "truststore.pki.rds.amazonaws.com" in str(caught.value)  # says what to do
    return "\n".join(caught.value.problems)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: make_ca("Evil Corp Root CA", "Evil Corp").cert_pem, "not an Amazon RDS CA"),
        (lambda: make_ca("Amazon RDS lookalike", "Not Amazon").cert_pem, "not an Amazon RDS CA"),
        (lambda: make_ca("Some Root", "Amazon Web Services, Inc.").cert_pem, "not an Amazon RDS"),
        (
            lambda: make_ca(valid_from=datetime.now(UTC) - timedelta(days=400)).cert_pem,
            "expired on",
        ),
        (
            lambda: make_ca(valid_from=datetime.now(UTC) + timedelta(days=2)).cert_pem,
            "not valid before",
        ),
        (lambda: make_ca(ca=False).cert_pem, "not a CA certificate"),
        (lambda: b"<html><body>Access Denied</body></html>\n", "no PEM certificate"),
        (lambda: b"", "no PEM certificate"),
        (lambda: make_ca().cert_pem + make_ca().key_pem, "PRIVATE KEY block"),
        (
            lambda: b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
            "does not parse",
        ),
    ],
    ids=[
        "foreign-ca",
        "rds-cn-foreign-org",
        "aws-org-other-cn",
        "expired",
        "not-yet-valid",
        "not-a-ca",
        "html",
        "empty",
        "private-key",
        "garbage-pem",
    ],
)
def test_a_bad_bundle_fails(make: object, needle: str) -> None:
    assert callable(make)
    assert needle in _problems(make())


def test_one_foreign_certificate_among_rds_ones_fails() -> None:
    data = rds_bundle() + make_ca("Corporate Proxy CA", "Intercept Ltd").cert_pem
    assert "certificate 3" in _problems(data)


def test_a_leaf_issued_by_an_rds_looking_ca_fails() -> None:
    ca = make_ca()
    leaf = make_server_cert(ca, ["db.example.com"])
    assert "not a CA certificate" in _problems(ca.cert_pem + leaf.cert_pem)


def test_expiry_is_judged_against_now() -> None:
    data = make_ca(valid_days=10).cert_pem
    rds_ca.check_bundle(data)
    assert "expired" in _problems(data, now=datetime.now(UTC) + timedelta(days=11))


def test_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(rds_ca.BundleError, match="cannot be read"):
        rds_ca.check_file(tmp_path / "nope.pem")


def _build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, str(BUILD), "--dir", str(tmp_path / "lambda")),
            *("--out", str(tmp_path / "lambda.zip"), "--lock", str(tmp_path / "no-such.txt")),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_build_package_refuses_without_a_bundle(tmp_path: Path) -> None:
    proc = _build(tmp_path)
    assert proc.returncode == 1
    assert "--ca-bundle" in proc.stderr and "--insecure-no-ca" in proc.stderr
    assert not (tmp_path / "lambda").exists()  # refused before anything was done


@pytest.mark.parametrize("given", [False, True])
def test_the_refusal_says_how_to_get_the_bundle_and_how_to_go_without(
    tmp_path: Path, given: bool
) -> None:
    """No bundle, or ``make package``'s default CA_BUNDLE path with nothing there: the refusal
    gives the curl line that fetches it to that path, the make line that uses it, and the
    one for a local experiment (issue 28 item 12)."""
    missing = tmp_path / "rds-ca" / "global-bundle.pem"
    proc = _build(tmp_path, *(("--ca-bundle", str(missing)) if given else ()))
    assert proc.returncode == 1
    shown = str(missing) if given else "build/rds-ca/global-bundle.pem"
    url = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    lines = [line.strip() for line in proc.stderr.splitlines()]
    assert f"curl --fail --create-dirs -o {shown} {url}" in lines
    assert any(line.startswith(f"make package CA_BUNDLE={shown}") for line in lines)
    assert any(line.startswith("make package PACKAGE_FLAGS=--insecure-no-ca") for line in lines)
    assert "Traceback" not in proc.stderr and not (tmp_path / "lambda").exists()
    makefile = (REPO / "Makefile").read_text()
    assert f"curl --fail --create-dirs -o build/rds-ca/global-bundle.pem {url}" in makefile
    assert "CA_BUNDLE ?= build/rds-ca/global-bundle.pem" in makefile


def test_build_package_refuses_a_foreign_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(make_ca("Evil Corp Root CA", "Evil Corp").cert_pem)
    proc = _build(tmp_path, "--ca-bundle", str(bundle))
    assert proc.returncode == 1
    assert "not a valid Amazon RDS CA bundle" in proc.stderr
    assert not (tmp_path / "lambda").exists()
