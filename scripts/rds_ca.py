#!/usr/bin/env python3
"""Check an RDS CA bundle before it is shipped in the Lambda package.

    python scripts/rds_ca.py build/rds-ca/global-bundle.pem

The function verifies the database server's certificate (``sslmode=verify-full``) against the
bundle that ``make package`` copies to ``patcher/certs/rds-global-bundle.pem``. Whatever is in
that file is trusted to vouch for the database, so it must hold exactly what AWS publishes at
https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem and nothing else:

- PEM, only ``CERTIFICATE`` blocks (no keys, no other objects), at least one, each parseable;
- every certificate a CA (basicConstraints ``ca=True``) of Amazon RDS: subject and issuer with
  ``O=Amazon Web Services, Inc.`` and a common name containing ``Amazon RDS``;
- none expired, none not valid yet.

Exits 0 and prints a summary (count, earliest expiry) when the bundle passes; 1 with every
problem found otherwise. Needs the ``cryptography`` package (the dev extra has it). The
checker guards against a wrong or tampered download (an HTML error page, a proxy's CA, a
truncated file); it is not a substitute for fetching the bundle over verified HTTPS.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

ORGANIZATION = "Amazon Web Services, Inc."
COMMON_NAME_MARK = "Amazon RDS"
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class BundleError(ValueError):
    """The bundle is not a valid RDS CA bundle; ``problems`` lists every reason."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n  ".join(self.problems)
        super().__init__(
            f"{path} is not a valid Amazon RDS CA bundle:\n  {lines}\nFetch it again from "
            "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
        )


class Bundle:
    """The checked certificates. (A plain class: this file is also loaded without being in
    sys.modules, by build_package and the tests, where a dataclass cannot be made.)"""

    def __init__(self, certificates: list[x509.Certificate]) -> None:
        self.certificates = certificates

    @property
    def earliest_expiry(self) -> x509.Certificate:
        return min(self.certificates, key=lambda c: c.not_valid_after_utc)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return ", ".join(str(v.value) for v in values)


def _is_rds(name: x509.Name) -> bool:
    return _attribute(name, NameOID.ORGANIZATION_NAME) == ORGANIZATION and (
        COMMON_NAME_MARK in _attribute(name, NameOID.COMMON_NAME)
    )


def check_bundle(data: bytes, *, path: str = "bundle", now: datetime | None = None) -> Bundle:
    """The bundle's certificates when every one is a current Amazon RDS CA; else BundleError."""
    now = now or datetime.now(UTC)
    kinds = [m.decode() for m in _BEGIN.findall(data)]
    if not kinds:
        raise BundleError(path, ["no PEM certificate in it (is it an error page?)"])
    problems = [f"holds a PEM {kind} block" for kind in sorted(set(kinds) - {"CERTIFICATE"})]
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise BundleError(path, [*problems, f"a certificate does not parse: {exc}"]) from None
    if len(certificates) != kinds.count("CERTIFICATE"):
        problems.append(
            f"{kinds.count('CERTIFICATE')} CERTIFICATE blocks but {len(certificates)} parsed"
        )
    for number, cert in enumerate(certificates, 1):
        subject = cert.subject.rfc4514_string()
        where = f"certificate {number} ({subject})"
        if not _is_rds(cert.subject):
            problems.append(f"{where}: subject is not an Amazon RDS CA")
        if not _is_rds(cert.issuer):
            problems.append(f"{where}: issued by {cert.issuer.rfc4514_string()}, not Amazon RDS")
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            problems.append(f"{where}: not a CA certificate (basicConstraints ca=True)")
        if cert.not_valid_after_utc <= now:
            problems.append(f"{where}: expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        if cert.not_valid_before_utc > now:
            problems.append(f"{where}: not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if problems:
        raise BundleError(path, problems)
    return Bundle(certificates)


def check_file(path: Path, *, now: datetime | None = None) -> Bundle:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
    return check_bundle(data, path=str(path), now=now)


def summary(path: Path, bundle: Bundle) -> str:
    first = bundle.earliest_expiry
    return (
        f"{path}: {len(bundle.certificates)} Amazon RDS CA certificates; the first to expire is "
        f"{_attribute(first.subject, NameOID.COMMON_NAME)!r} on "
        f"{first.not_valid_after_utc:%Y-%m-%d}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the PEM bundle to check")
    args = parser.parse_args(argv)
    try:
        bundle = check_file(args.bundle)
    except BundleError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(summary(args.bundle, bundle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
