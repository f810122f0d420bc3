"""`make package`: the Lambda zip is built from the lock, fits, and runs on its own.

Two builds of the same recipe (scripts/build_package.py) from the same lock
(requirements/lambda.txt): the arm64 one that ships, checked for size, contents and
architecture; and an x86_64 twin that this machine can run. The twin is unzipped and run in
an isolated interpreter (``-I -S``: no site-packages, no PYTHONPATH, no user site; sys.path is
the stdlib plus the unzipped package), which proves the package needs nothing but itself:
every module it loads must come from the package or the standard library. The twin targets
CPython 3.12 like the function when a 3.12 interpreter is on this machine, else the running
Python.

Both builds fetch their wheels from PyPI (or pip's cache): about 20 s each here, 45 s for the
module. The tests never skip: no network means a failed build, not a pass.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.fixtures.s3 import S3Bucket
from tests.fixtures.tls import make_ca

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_package.py"
LOCK = REPO / "requirements" / "lambda.txt"
MIGRATIONS = REPO / "migrations"
TEMPLATE = REPO / "template.yaml"
MB = 1024 * 1024
ARM64_PLATFORM = "manylinux_2_34_aarch64"  # what the Makefile's package target builds
X86_PLATFORM = "manylinux_2_34_x86_64"  # this machine: Debian 12, glibc 2.36
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
TRACE_HEADER = "Root=1-65a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
PYENV_312 = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")

pytestmark = pytest.mark.slow


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_package", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_package = _load_script()


def twin_python() -> tuple[str, str]:
    """(interpreter, X.Y) for the x86_64 twin: a CPython 3.12 if there is one, else ours."""
    candidates = [str(PYENV_312), *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"))]
    candidates.append(shutil.which("python3.12") or "")  # may be a pyenv shim that refuses
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "3.12":
            return candidate, "3.12"
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass
class Package:
    zip: Path
    dir: Path
    log: str

    def infos(self) -> list[zipfile.ZipInfo]:
        with zipfile.ZipFile(self.zip) as archive:
            return archive.infolist()


def build(where: Path, platform: str, python_version: str, *flags: str) -> Package:
    package = Package(where / "lambda.zip", where / "lambda", "")
    proc = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--platform", platform),
            *("--python-version", python_version),
            *("--dir", str(package.dir), "--out", str(package.zip)),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    package.log = proc.stdout
    return package


@pytest.fixture(scope="module")
def test_ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A bundle that passes scripts/rds_ca.py (the real one needs the network): CAs made
    here with Amazon RDS names; what matters is that the build checks and ships it."""
    bundle = make_ca().cert_pem + make_ca("Amazon RDS test-region-2 Root CA RSA4096 G1").cert_pem
    return bundle


@pytest.fixture(scope="module")
def arm64(tmp_path_factory: pytest.TempPathFactory, test_ca_bundle: bytes) -> Package:
    where = tmp_path_factory.mktemp("arm64")
    (where / "bundle.pem").write_bytes(test_ca_bundle)
    return build(where, ARM64_PLATFORM, "3.12", "--ca-bundle", str(where / "bundle.pem"))


@dataclass
class Twin:
    """The x86_64 build, unzipped, and the interpreter that runs it."""

    package: Package
    root: Path  # the unzipped zip (not the build dir: what ships is the zip)
    python: str


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    python, version = twin_python()
    # Built without the CA bundle, as a local experiment would be (the twin's database has
    # no TLS): this also proves that --insecure-no-ca builds.
    package = build(tmp_path_factory.mktemp("x86_64"), X86_PLATFORM, version, "--insecure-no-ca")
    root = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(package.zip) as archive:
        archive.extractall(root)
    return Twin(package, root, python)


# --------------------------------------------------------------------------- running the twin

# Runs in the isolated interpreter: argv = package dir, JSON job file, JSON answer file.
BOOTSTRAP = r"""
import json, os, sys, time
pkg, job_path, answer_path = sys.argv[1:4]
sys.path.insert(0, pkg)
leaks = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
job = json.load(open(job_path))

class Context:
    def __init__(self, n):
        self.aws_request_id = f"req-{n}"
        self.function_name = "StackFlowPatcher"
        self.function_version = "1"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            "arn:aws:lambda:us-east-1:123456789012:function:StackFlowPatcher:live")
        self.client_context = None
        self.log_group_name = "/aws/lambda/StackFlowPatcher"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)

from patcher.handler import lambda_handler  # the SPEC path, as Lambda imports it
results = [lambda_handler(event, Context(n)) for n, event in enumerate(job["events"])]
probes = {}
if job.get("probe"):
    import boto3, pglast, psycopg
    probes["psycopg_impl"] = psycopg.pq.__impl__
    probes["libpq"] = psycopg.pq.version()
    probes["pglast"] = type(pglast.parse_sql("ALTER TABLE t ADD COLUMN c int")[0].stmt).__name__
    for service in job["probe"]:
        client = boto3.client(service, region_name="us-east-1")
        probes[service] = client.meta.service_model.service_name
    probes["paginator"] = type(boto3.client("s3", region_name="us-east-1")
                               .get_paginator("list_objects_v2")).__name__
    import aws_xray_sdk.core  # its recorder makes an xray client on import
stdlib = os.path.dirname(os.__file__)
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not os.path.realpath(module.__file__).startswith((os.path.realpath(pkg), stdlib))
)
import importlib.util
patcher_modules = sorted(name for name in sys.modules if name.split(".")[0] == "patcher")
has_dev = importlib.util.find_spec("patcher.dev") is not None
json.dump({"results": results, "probes": probes, "leaks": leaks, "outside": outside,
           "patcher_modules": patcher_modules, "has_dev": has_dev,
           "sys_path": sys.path, "version": sys.version}, open(answer_path, "w"))
"""

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "LANG": "C.UTF-8",
}


def run_twin(
    twin: Twin,
    tmp_path: Path,
    events: list[Any],
    env: dict[str, str] | None = None,
    probe: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Invoke the packaged handler once per event in one isolated process (warm starts)."""
    job = tmp_path / "job.json"
    answer = tmp_path / "answer.json"
    job.write_text(json.dumps({"events": events, "probe": list(probe)}))
    proc = subprocess.run(
        [twin.python, "-I", "-S", "-c", BOOTSTRAP, str(twin.root), str(job), str(answer)],
        env={**BASE_ENV, "HOME": str(tmp_path), **(env or {})},  # nothing inherited
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"packaged handler crashed:\n{proc.stdout}\n{proc.stderr}"
    out: dict[str, Any] = json.loads(answer.read_text())
    assert out["leaks"] == [], f"site-packages on sys.path: {out['sys_path']}"
    assert out["outside"] == [], "modules loaded from outside the package and the stdlib"
    out["stdout"] = proc.stdout
    return out


# --------------------------------------------------------------------------- the arm64 package


def lock_pins() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", LOCK.read_text(), flags=re.M)
    return {_canonical(name): version for name, version in pins}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions(names: list[str]) -> dict[str, str]:
    """From the dist-info folders of the zip: {name: version}."""
    found: dict[str, str] = {}
    for top in {name.split("/", 1)[0] for name in names}:
        match = re.fullmatch(r"(.+)-([^-]+)\.dist-info", top)
        if match:
            found[_canonical(match[1])] = match[2]
    return found


def test_arm64_package_fits_lambda_with_room(arm64: Package) -> None:
    infos = arm64.infos()
    zipped = arm64.zip.stat().st_size
    unzipped = sum(info.file_size for info in infos)
    # 16.8 MB zipped without bytecode, 21.2 MB with it (issue 32): Lambda's direct-upload
    # limit is 50 MB.
    assert zipped < 30 * MB, f"{zipped / MB:.1f} MB zipped: the aim is < 30 MB"
    assert unzipped < 250 * MB, f"{unzipped / MB:.1f} MB unzipped: Lambda's limit is 250 MB"
    assert "MB zipped" in arm64.log and "largest top-level entries" in arm64.log


def test_arm64_package_is_exactly_the_lock_plus_patcher(arm64: Package) -> None:
    names = [info.filename for info in arm64.infos()]
    assert installed_versions(names) == lock_pins()
    tops = {name.split("/", 1)[0] for name in names}
    assert (
        "patcher" in tops
        and "patcher/handler/__init__.py" in names
        and "patcher/aws/handler.py" in names
    )
    shipped = sorted(n for n in names if n.startswith("patcher/") and n.endswith(".py"))
    ours = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "patcher").rglob("*.py")
        if "__pycache__" not in p.parts and not p.is_relative_to(REPO / "patcher" / "dev")
    )
    assert shipped == ours
    # patcher/dev (devrun, localpg: development tools) stays out of the package.
    assert (REPO / "patcher" / "dev" / "devrun.py").is_file()
    assert [n for n in names if n.startswith("patcher/dev")] == []


def test_arm64_package_holds_only_what_lambda_runs(arm64: Package) -> None:
    names = [info.filename for info in arm64.infos()]
    parts = {part for name in names for part in name.split("/")[:-1]}
    assert not parts & {"tests", "test", ".venv", "bin", "node_modules"}
    assert not [n for n in names if n.endswith((".pyo", ".c", ".pyx", "/RECORD"))]
    # Bytecode only as the build compiled it: one pyc per module, of the runtime's minor.
    assert not [n for n in names if n.endswith(".pyc") and ".cpython-312." not in n]
    assert not [n for n in names if n.startswith(("migrations/", "build/", ".git"))]
    # dist-info metadata stays: Powertools reads its own version from it.
    assert any(re.fullmatch(r"aws_lambda_powertools-[^/]+\.dist-info/METADATA", n) for n in names)


def pyc_flags(data: bytes) -> int:
    """PEP 552: the pyc header's flags word (1 = hash-based, unchecked; 3 = checked)."""
    return int.from_bytes(data[4:8], "little")


def test_arm64_package_ships_unchecked_bytecode_of_the_runtime(arm64: Package) -> None:
    """Every module of the package has its unchecked-hash pyc compiled by CPython 3.12 (the
    template's Runtime), so a cold start on Lambda's read-only disk compiles nothing. On a
    machine without a 3.12 the build must say so, how to get one, and ship no bytecode."""
    with zipfile.ZipFile(arm64.zip) as archive:
        names = set(archive.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        pycs = sorted(n for n in names if n.endswith(".pyc"))
        if build_package.find_runtime_python("3.12") is None:
            assert pycs == [] and "no CPython 3.12 found" in arm64.log
            assert "pyenv install 3.12" in arm64.log
            return
        assert "unchecked-hash .pyc compiled by" in arm64.log
        expected = {
            f"{n.rsplit('/', 1)[0]}/__pycache__/{n.rsplit('/', 1)[1][:-3]}.cpython-312.pyc"
            if "/" in n
            else f"__pycache__/{n[:-3]}.cpython-312.pyc"
            for n in sources
        }
        missing = sorted(expected - names)
        assert missing == [], f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"
        magic = importlib.util.MAGIC_NUMBER if sys.version_info[:2] == (3, 12) else None
        for name in pycs:
            data = archive.read(name)
            assert pyc_flags(data) == 1, f"{name}: not an unchecked-hash pyc"
            if magic is not None:
                assert data[:4] == magic, name
        assert len(pycs) == len(sources)


def test_package_python_is_the_template_runtime() -> None:
    """The Makefile builds (and compiles) for the minor the template's functions run."""
    runtimes = set(re.findall(r"^\s+Runtime: python(3\.\d+)\s*$", TEMPLATE.read_text(), re.M))
    makefile = (REPO / "Makefile").read_text()
    built = set(re.findall(r"--python-version (3\.\d+)", makefile))
    assert len(runtimes) == 1 and runtimes == built, (runtimes, built)


def test_arm64_package_has_only_arm64_binaries(arm64: Package) -> None:
    machines: dict[str, str] = {}
    with zipfile.ZipFile(arm64.zip) as archive:
        for name in archive.namelist():
            if re.search(r"\.so(\.[0-9.]+)?$", name):
                header = archive.open(name).read(20)
                assert header[:4] == b"\x7fELF", name
                machines[name] = ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "?")
    assert any("psycopg_binary" in name for name in machines)
    assert any(name.startswith("pglast/") for name in machines)
    assert set(machines.values()) == {"aarch64"}, machines


def test_arm64_package_ships_the_checked_ca_bundle(arm64: Package, test_ca_bundle: bytes) -> None:
    with zipfile.ZipFile(arm64.zip) as archive:
        assert archive.read(build_package.CA_BUNDLE_PATH) == test_ca_bundle
    assert "2 Amazon RDS CA certificates" in arm64.log
    # Where the template's PATCHER_DB_SSLROOTCERT points (Lambda unzips into /var/task).
    assert f"/var/task/{build_package.CA_BUNDLE_PATH}" in (REPO / "template.yaml").read_text()


def test_twin_built_without_ca_has_no_bundle(twin: Twin) -> None:
    assert not (twin.root / build_package.CA_BUNDLE_PATH).exists()


def test_arm64_zip_is_deterministic(arm64: Package) -> None:
    infos = arm64.infos()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} <= {0o100644, 0o100755}


# --------------------------------------------------------------------------- the x86_64 twin


def test_every_aws_service_patcher_names_is_kept() -> None:
    """A client of a service whose model was pruned fails in Lambda: keep the list honest."""
    pattern = re.compile(r"""client\(\s*["']([a-z0-9-]+)["']""")
    named = {
        service
        for path in (REPO / "patcher").rglob("*.py")
        for service in pattern.findall(path.read_text())
    }
    assert "s3" in named  # the scan works
    assert named <= set(build_package.AWS_SERVICES)
    # Created by libraries: Powertools' get_secret, the X-Ray SDK's sampling connector.
    assert {"secretsmanager", "xray"} <= set(build_package.AWS_SERVICES)


def test_twin_package_runs_alone(twin: Twin, tmp_path: Path) -> None:
    out = run_twin(twin, tmp_path, [{"action": "bogus"}], probe=build_package.AWS_SERVICES)
    (result,) = out["results"]
    assert result["ok"] is False
    assert result["status"] == "invalid"
    assert result["error"]["type"] == "InvalidRequest"
    assert result["request_id"] == "req-0"
    probes = out["probes"]
    assert probes["psycopg_impl"] == "binary"  # libpq from the wheel, not this machine
    assert probes["pglast"] == "AlterTableStmt"
    assert probes["paginator"] == "S3.Paginator.ListObjectsV2"
    for service in build_package.AWS_SERVICES:
        assert probes[service] == service
    expected = "3.12" if twin.python != sys.executable else f"{sys.version_info[0]}."
    assert out["version"].startswith(expected)
    # The handler ran from the package, which has no patcher.dev, and never needed it.
    assert "patcher.aws.handler" in out["patcher_modules"]
    assert [m for m in out["patcher_modules"] if m.startswith("patcher.dev")] == []
    assert out["has_dev"] is False
    assert not (twin.root / "patcher" / "dev").exists()
    with zipfile.ZipFile(twin.package.zip) as archive:
        assert [n for n in archive.namelist() if n.startswith("patcher/dev")] == []


class XRayDaemon:
    """A UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def received(self) -> list[bytes]:
        packets = []
        while True:
            try:
                packets.append(self.sock.recv(65536))
            except BlockingIOError:
                return packets


@pytest.fixture
def xray_daemon() -> Iterator[XRayDaemon]:
    daemon = XRayDaemon()
    try:
        yield daemon
    finally:
        daemon.sock.close()


def test_twin_package_migrates_from_s3_with_its_secret_and_traces(
    twin: Twin,
    tmp_path: Path,
    s3_bucket: S3Bucket,
    aws_env: str,
    pg_dsn: str,
    xray_daemon: XRayDaemon,
) -> None:
    """As deployed: migrations in S3, credentials in Secrets Manager (moto), tracing on."""
    ups = sorted(p.name for p in MIGRATIONS.glob("*.up.sql"))
    for path in sorted(MIGRATIONS.iterdir()):
        s3_bucket.put(f"migrations/{path.name}", path.read_bytes())
    url = urlsplit(pg_dsn)
    secret = {
        "engine": "postgres",
        "host": url.hostname,
        "port": url.port,
        "username": url.username,
        "password": "unused-by-trust-auth",
        "dbname": url.path.strip("/"),
    }
    secrets = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    arn = secrets.create_secret(
        Name=f"package-test/{secret['dbname']}", SecretString=json.dumps(secret)
    )["ARN"]
    env = {
        "AWS_ENDPOINT_URL_S3": aws_env,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws_env,
        "PATCHER_SOURCE": f"s3://{s3_bucket.name}/migrations/",
        "PATCHER_EXPECTED_BUCKET_OWNER": "123456789012",
        "PATCHER_DB_SECRET_ARN": arn,
        "PATCHER_LOCK_WAIT_SECONDS": "5",
        "POWERTOOLS_SERVICE_NAME": "stackflow-patcher",
        # What Lambda sets, so that Powertools' Tracer and the X-Ray SDK are live.
        "AWS_LAMBDA_FUNCTION_NAME": "StackFlowPatcher",
        "LAMBDA_TASK_ROOT": str(twin.root),
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon.address,
    }
    try:
        out = run_twin(
            twin,
            tmp_path,
            [
                {"action": "migrate", "dry_run": True},
                {"action": "migrate"},
                {"action": "status"},
            ],
            env=env,
        )
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    preview, applied, status = out["results"]
    assert preview["ok"] and preview["dry_run"], preview
    assert applied["ok"], applied
    assert [m["state"] for m in applied["migrations"]] == ["applied"] * len(ups)
    assert status["ok"] and status["pending"] == [], status
    assert status["current_version"] == int(ups[-1].split("_", 1)[0])
    segments = b"\n".join(xray_daemon.received())
    for call in (b'"ListObjectsV2"', b'"GetObject"', b'"GetSecretValue"'):
        assert call in segments, f"no X-Ray subsegment for {call.decode()}"


IMPORT_HANDLER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
from patcher.handler import lambda_handler
import patcher
print(patcher.__version__, sys.flags.dont_write_bytecode, round(time.perf_counter() - start, 3))
"""


def test_twin_imports_its_bytecode_from_a_read_only_copy(twin: Twin, tmp_path: Path) -> None:
    """As Lambda starts it: a read-only copy, no bytecode writes; the shipped pycs are used
    as they are (unchecked: a source edited after the build does not invalidate them)."""
    copy = tmp_path / "task"
    shutil.copytree(twin.root, copy)
    init = copy / "patcher" / "__init__.py"
    init.write_text(re.sub(r"__version__ = .*", '__version__ = "edited-source"', init.read_text()))
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
    try:
        proc = subprocess.run(
            # -P -s -S: -I's isolation but for the environment, which -I would ignore
            [twin.python, "-P", "-s", "-S", "-c", IMPORT_HANDLER, str(copy)],
            env={**BASE_ENV, "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        after = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert proc.returncode == 0, proc.stderr
    version, dont_write, _seconds = proc.stdout.split()
    assert dont_write == "1"
    assert after == before  # nothing written
    if "unchecked-hash .pyc compiled by" in twin.package.log:
        from patcher import __version__

        assert version == __version__  # the pyc, not the edited source
    else:  # no interpreter of the twin's minor to compile with: the source is what runs
        assert version == "edited-source"
