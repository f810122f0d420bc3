#!/usr/bin/env python3
"""Build the Lambda deployment package from the locked dependencies.

    python scripts/build_package.py --platform manylinux_2_34_aarch64 --python-version 3.12 \
        --dir build/lambda --out build/lambda.zip

1. wipes DIR and installs the lock into it with pip: ``--require-hashes`` (every file checked
   against the lock), ``--only-binary=:all:`` and the target's platform, Python version and
   implementation, so no wheel of this machine's architecture can slip in; ``--no-deps``
   because the lock is the complete closure, resolved for the target (the installed set is
   then checked against every package's own requirements, evaluated for the target);
2. copies the ``patcher`` package (no ``__pycache__``) and the RDS CA bundle given with
   ``--ca-bundle`` to ``patcher/certs/rds-global-bundle.pem`` (the template's
   ``PATCHER_DB_SSLROOTCERT``), after checking it with ``scripts/rds_ca.py``: PEM, only
   Amazon RDS CAs, none expired. Without a valid bundle it refuses to build, before anything
   else, unless ``--insecure-no-ca`` (local experiments: the package then cannot verify the
   database's certificate, and the template's ``verify-full`` fails closed with a
   ConfigError);
3. prunes what Lambda never runs: ``__pycache__``/``*.pyc``, console scripts (``bin/``),
   ``dist-info/RECORD`` (stale once pruned; the rest of dist-info stays: Powertools and
   others read their version from it), the test suites and C/Cython sources some
   dependencies ship, and botocore's models of the AWS services nobody here calls
   (``AWS_SERVICES`` lists those kept; ``--all-aws-services`` keeps them all);
4. compiles every ``.py`` of DIR to bytecode with the runtime's own CPython minor
   (``--compile-python``, found on PATH or under pyenv when not given), as *unchecked-hash*
   ``.pyc`` (PEP 552): Lambda's file system is read-only, so without them every cold start
   compiles boto3, botocore, pydantic, Powertools and patcher from source, and unchecked pycs
   are used without a look at the source's mtime (which the zip fixes at 1980 anyway). Where
   no such interpreter is found the build says how to get one and goes on without bytecode;
5. zips DIR deterministically (sorted entries, fixed timestamps and modes), so the same
   lock and code give the same bytes; prints zipped and unzipped sizes and the largest
   top-level entries.

Needs only a Python >= 3.11 with pip; it runs no code of the target platform. The SAM
template's CodeUri is DIR: both DIR and the zip are kept.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = REPO / "requirements" / "lambda.txt"
CODE_PACKAGES = ("patcher",)
# Development tools inside them that Lambda never runs (devrun, localpg: `make run`): not copied.
DEV_PACKAGES = ("patcher/dev",)
# Lambda's hard limits for a zip package (the unzipped one is absolute; 50 MB zipped is the
# direct-upload limit, which `sam deploy` avoids through S3 but which is a fine ceiling).
MAX_ZIPPED_MB = 50
MAX_UNZIPPED_MB = 250
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
TEST_DIRS = frozenset({"tests", "test"})
# C and Cython sources some wheels carry next to the compiled extension (pglast: 4 MB).
SOURCE_SUFFIXES = frozenset({".c", ".h", ".pyx", ".pxd"})
# The AWS service models kept in botocore/data (and boto3/data): the ones something in the
# package creates a client for. The full set is 20 MB unzipped and, being gzipped JSON already,
# 15.6 MB zipped: most of the package. A client of any other service fails with
# UnknownServiceError; tests/infra/test_infra_package.py checks that every service named in
# patcher/ is listed here and creates a client of each from the built package.
AWS_SERVICES = (
    "s3",  # patcher.sources.s3: the migrations
    "secretsmanager",  # patcher.app.secrets, through Powertools parameters.get_secret
    "sts",  # botocore's assume-role and web-identity credential providers
    "xray",  # aws_xray_sdk's sampling connector creates an xray client (Tracer)
    "lambda",  # patcher.cli.invoke (the CLI side of `patcher invoke`; 0.1 MB)
    "rds",  # patcher.db.iam: generate_db_auth_token (signed locally, no call)
    "stepfunctions",  # patcher.cli.run_state_machine (the CLI side of `patcher run-state-machine`)
)
MB = 1024 * 1024
# Where the RDS CA bundle goes in the package; the template's PATCHER_DB_SSLROOTCERT is
# /var/task/ + this (Lambda unzips the package into /var/task).
CA_BUNDLE_PATH = "patcher/certs/rds-global-bundle.pem"
# Where `make package` looks for the bundle by default (CA_BUNDLE), and where Amazon serves it.
DEFAULT_CA_BUNDLE = REPO / "build" / "rds-ca" / "global-bundle.pem"
CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


def expand_platforms(platforms: list[str]) -> list[str]:
    """What pip accepts on a real glibc 2.N system, which ``--platform`` does not infer.

    ``manylinux_2_34_aarch64`` becomes itself, every ``manylinux_2_M_aarch64`` down to 2.17,
    and ``manylinux2014_aarch64``; other tags pass through unchanged.
    """
    out: list[str] = []
    for platform in platforms:
        match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
        tags = [platform]
        if match and int(match[1]) >= 17:
            glibc, arch = int(match[1]), match[2]
            tags = [f"manylinux_2_{m}_{arch}" for m in range(glibc, 16, -1)]
            tags.append(f"manylinux2014_{arch}")
        out.extend(tag for tag in tags if tag not in out)
    return out


def install_dependencies(
    lock: Path, target: Path, platforms: list[str], python_version: str, python: str
) -> None:
    cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--root-user-action=ignore"]
    cmd += ["--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile"]
    cmd += ["--implementation", "cp", "--python-version", python_version]
    for platform in expand_platforms(platforms):
        cmd += ["--platform", platform]
    cmd += ["--target", str(target), "-r", str(lock)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def target_environment(platforms: list[str], python_version: str) -> dict[str, str]:
    """PEP 508 marker values of the target (Lambda's CPython on Linux)."""
    arch = "aarch64" if any("aarch64" in p for p in platforms) else "x86_64"
    major_minor = ".".join(python_version.split(".")[:2])
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_machine": arch,
        "python_version": major_minor,
        "python_full_version": major_minor + ".0",
        "implementation_version": major_minor + ".0",
    }


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(target: Path, environment: dict[str, str]) -> list[str]:
    """Requirements of the installed distributions that the lock left out (none, normally).

    ``--no-deps`` trusts the lock to be complete; this checks it, with the markers evaluated
    for the target rather than for the Python running this script.
    """
    try:
        requirements = importlib.import_module("packaging.requirements")
    except ImportError:  # pip always carries a copy
        requirements = importlib.import_module("pip._vendor.packaging.requirements")
    Requirement = requirements.Requirement
    dists = {canonical_name(d.metadata["Name"]): d for d in distributions(path=[str(target)])}

    def applicable(name: str, extras: set[str]) -> list[Any]:
        reqs = [Requirement(line) for line in dists[name].requires or ()]
        return [
            req
            for req in reqs
            if req.marker is None
            or any(req.marker.evaluate({**environment, "extra": e}) for e in {"", *extras})
        ]

    # Extras that installed packages ask of each other (boto3 may ask botocore[crt]), to a
    # fixed point; the extras of the lock's own top-level lines are not visible here.
    wanted: dict[str, set[str]] = {name: set() for name in dists}
    changed = True
    while changed:
        changed = False
        for name in dists:
            for req in applicable(name, wanted[name]):
                other = wanted.setdefault(canonical_name(req.name), set())
                if not req.extras <= other:
                    other.update(req.extras)
                    changed = True
    problems = []
    for name in sorted(dists):
        for req in applicable(name, wanted[name]):
            if canonical_name(req.name) not in dists:
                problems.append(f"{name} needs {req}")
    return problems


def copy_code(target: Path) -> None:
    """Copy CODE_PACKAGES into ``target``, without caches, tests and DEV_PACKAGES."""
    patterns = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "tests", "test_*.py")

    def ignore(directory: str, names: list[str]) -> set[str]:
        where = Path(directory).relative_to(REPO).as_posix()
        dev = {name for name in names if f"{where}/{name}" in DEV_PACKAGES}
        return set(patterns(directory, names)) | dev

    for package in CODE_PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=ignore)


def check_ca_bundle(path: Path) -> str:
    """``path``'s summary when it is a valid RDS CA bundle; raises ValueError otherwise.

    The checker (scripts/rds_ca.py) needs ``cryptography``: imported only when a bundle is
    given, so that ``--insecure-no-ca`` builds need nothing but pip."""
    spec = importlib.util.spec_from_file_location("rds_ca", Path(__file__).with_name("rds_ca.py"))
    assert spec is not None and spec.loader is not None
    rds_ca = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rds_ca)
    summary: str = rds_ca.summary(path, rds_ca.check_file(path))
    return summary


def no_ca_bundle(given: Path | None) -> str:
    """The refusal when there is no bundle to check: how to get it (the Makefile's curl line)
    and how to build for a local experiment without it."""
    path = given if given is not None else DEFAULT_CA_BUNDLE
    shown = path.relative_to(REPO) if path.is_absolute() and path.is_relative_to(REPO) else path
    return (
        f"no RDS CA bundle at {shown}: the package ships it so that the function can verify the "
        "database's certificate (the template's sslmode verify-full); refusing to build.\n"
        "Get Amazon's bundle, then build again:\n"
        f"  curl --fail --create-dirs -o {shown} {CA_BUNDLE_URL}\n"
        f"  make package CA_BUNDLE={shown}    (or: {Path(__file__).name} --ca-bundle {shown})\n"
        "For a local experiment only (the function then cannot verify the database's "
        "certificate, and verify-full fails closed):\n"
        "  make package PACKAGE_FLAGS=--insecure-no-ca    (or: --insecure-no-ca)"
    )


def copy_ca_bundle(bundle: Path, target: Path) -> None:
    destination = target / CA_BUNDLE_PATH
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, destination)


def prune(target: Path, aws_services: tuple[str, ...] | None = AWS_SERVICES) -> list[str]:
    """Remove what Lambda never runs; returns what went (the notable part), relative to target.

    ``aws_services``: the service models to keep in botocore/boto3 data, None for all.
    """
    removed: list[str] = []

    def drop(path: Path) -> None:
        removed.append(path.relative_to(target).as_posix())
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    for name in ("bin",):  # console scripts, with this machine's interpreter in the shebang
        if (target / name).is_dir():
            drop(target / name)
    if aws_services is not None:
        for data in (target / "botocore" / "data", target / "boto3" / "data"):
            services = sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
            gone = [p for p in services if p.name not in aws_services]
            for path in gone:
                shutil.rmtree(path)
            if gone:
                kept = len(services) - len(gone)
                removed.append(
                    f"{data.relative_to(target).as_posix()}/ ({len(gone)} of "
                    f"{len(services)} service models; {kept} kept)"
                )
    for path in sorted(target.rglob("*"), reverse=True):  # children before parents
        if not path.exists():
            continue
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)  # not reported: there are many and none matter
        elif path.suffix in (".pyc", ".pyo"):
            path.unlink()
        elif path.suffix in SOURCE_SUFFIXES and path.is_file():
            drop(path)
        elif path.name == "RECORD" and path.parent.name.endswith(".dist-info"):
            path.unlink()
        elif (
            path.is_dir()
            and path.name in TEST_DIRS
            and path.parent != target
            and (path.parent / "__init__.py").exists()
        ):
            # A dependency's own test suite (a subpackage of an installed package); top-level
            # "tests" would be a stray package installed by a careless wheel, not ours to judge.
            drop(path)
    return removed


# Where Lambda unzips the package: the file names compiled into the bytecode (tracebacks).
LAMBDA_TASK_ROOT = "/var/task"
# Run by the runtime's interpreter: compile DIR in place, unchecked-hash pycs, quietly.
COMPILE = (
    "import compileall, py_compile, sys; "
    "ok = compileall.compile_dir(sys.argv[1], ddir=sys.argv[2], quiet=1, workers=0, "
    "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH); "
    "sys.exit(0 if ok else 1)"
)
NO_BYTECODE_HINT = (
    "the package ships without bytecode: every cold start then compiles the dependencies and "
    "patcher from source (about 0.7 s more per cold start, measured in docs/benchmarks.md). "
    "Install CPython {version} (pyenv install {version}, apt-get install python{version}, or "
    "uv python install {version}) or pass --compile-python PATH"
)


def interpreter_minor(python: str) -> str | None:
    """``X.Y`` of ``python`` (isolated, no site), None when it does not run."""
    try:
        probe = subprocess.run(
            [python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


def find_runtime_python(version: str) -> str | None:
    """A CPython of the runtime's minor: ``pythonX.Y`` on PATH, else under pyenv."""
    minor = ".".join(version.split(".")[:2])
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{minor}") or ""]  # may be a pyenv shim that refuses
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{minor}*/bin/python{minor}"))
    for candidate in filter(None, candidates):
        if interpreter_minor(candidate) == minor:
            return candidate
    return None


def compile_bytecode(target: Path, python: str) -> int:
    """Compile every module of ``target`` with ``python``; returns how many pycs were written."""
    subprocess.run([python, "-I", "-S", "-c", COMPILE, str(target), LAMBDA_TASK_ROOT], check=True)
    return sum(1 for _ in target.rglob("*.pyc"))


def package_files(root: Path) -> list[Path]:
    return sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.as_posix())


def write_zip(root: Path, out: Path) -> None:
    """Deterministic: sorted entries, fixed timestamps, modes 644/755, no directory entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in package_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so that external_attr carries the mode
            mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)


def sizes_by_top_level(root: Path) -> dict[str, int]:
    totals: dict[str, int] = {}
    for path in package_files(root):
        top = path.relative_to(root).parts[0]
        totals[top] = totals.get(top, 0) + path.stat().st_size
    return totals


def report(root: Path, out: Path) -> tuple[int, int]:
    totals = sizes_by_top_level(root)
    unzipped = sum(totals.values())
    zipped = out.stat().st_size
    files = len(package_files(root))
    print(f"package: {out} {zipped / MB:.2f} MB zipped, {unzipped / MB:.2f} MB unzipped")
    print(f"         {root}/ {files} files")
    print("largest top-level entries (unzipped):")
    for name, size in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        print(f"  {size / MB:8.2f} MB  {name}")
    return zipped, unzipped


def add_bytecode(target: Path, version: str, python: str | None) -> bool:
    """Compile ``target`` with the runtime's interpreter; False when a given one is wrong."""
    minor = ".".join(version.split(".")[:2])
    if python is not None and interpreter_minor(python) != minor:
        print(
            f"--compile-python {python} is not a CPython {minor} (the runtime's): bytecode of "
            "another minor is ignored by the runtime",
            file=sys.stderr,
        )
        return False
    python = python or find_runtime_python(version)
    if python is None:
        print(f"WARNING: no CPython {minor} found: " + NO_BYTECODE_HINT.format(version=minor))
        return True
    count = compile_bytecode(target, python)
    print(f"bytecode: {count} unchecked-hash .pyc compiled by {python} (CPython {minor})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--platform",
        action="append",
        help="wheel platform tag, repeatable; manylinux_2_N_ARCH also accepts older glibc tags"
        " (default: manylinux_2_34_aarch64, Lambda's python3.12 runtime on Amazon Linux 2023)",
    )
    parser.add_argument("--python-version", default="3.12", help="target Python (default 3.12)")
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="hashed requirements")
    parser.add_argument("--dir", type=Path, default=REPO / "build" / "lambda", help="package dir")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "lambda.zip", help="zip")
    parser.add_argument(
        "--pip-python", default=sys.executable, help="interpreter whose pip installs the wheels"
    )
    parser.add_argument(
        "--all-aws-services",
        action="store_true",
        help="keep every AWS service model in botocore/data (adds ~15 MB zipped)",
    )
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        help="the RDS CA bundle (PEM) to ship at " + CA_BUNDLE_PATH + "; checked first",
    )
    parser.add_argument(
        "--insecure-no-ca",
        action="store_true",
        help="build without the CA bundle (local experiments only: the function then cannot "
        "verify the database's certificate)",
    )
    parser.add_argument(
        "--compile-python",
        help="CPython of the runtime's minor that compiles the bytecode (default: pythonX.Y on "
        "PATH or under pyenv, for X.Y = --python-version)",
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="ship no bytecode (each cold start compiles)"
    )
    parser.add_argument("--max-zipped-mb", type=float, default=MAX_ZIPPED_MB)
    parser.add_argument("--max-unzipped-mb", type=float, default=MAX_UNZIPPED_MB)
    args = parser.parse_args(argv)
    platforms = args.platform or ["manylinux_2_34_aarch64"]
    target: Path = args.dir.resolve()
    out: Path = args.out.resolve()
    if target in (REPO, REPO / "patcher") or REPO.is_relative_to(target):
        parser.error(f"refusing to wipe {target}")
    bundle: Path | None = None
    if args.insecure_no_ca:
        print(
            "WARNING: --insecure-no-ca: no RDS CA bundle in the package; the function cannot "
            "verify the database's certificate (sslmode verify-ca/verify-full fail closed)",
            file=sys.stderr,
        )
    elif args.ca_bundle is None or not args.ca_bundle.exists():
        print(no_ca_bundle(args.ca_bundle), file=sys.stderr)
        return 1
    else:
        try:
            print(check_ca_bundle(args.ca_bundle), flush=True)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
        bundle = args.ca_bundle

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    install_dependencies(args.lock, target, platforms, args.python_version, args.pip_python)
    problems = missing_requirements(target, target_environment(platforms, args.python_version))
    if problems:
        print("the lock is incomplete for this target:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    copy_code(target)
    if bundle is not None:
        copy_ca_bundle(bundle, target)
    removed = prune(target, None if args.all_aws_services else AWS_SERVICES)
    if removed:
        print("pruned:", ", ".join(removed))
    if not args.no_compile and not add_bytecode(target, args.python_version, args.compile_python):
        return 1
    write_zip(target, out)
    zipped, unzipped = report(target, out)
    if zipped > args.max_zipped_mb * MB or unzipped > args.max_unzipped_mb * MB:
        print(
            f"too big: limits are {args.max_zipped_mb} MB zipped, "
            f"{args.max_unzipped_mb} MB unzipped",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
