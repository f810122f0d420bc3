"""Configuration: the only module that reads ``os.environ`` (SPEC section 3)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path

from patcher.app.release import release_alias
from patcher.core.errors import ConfigError, InvalidRequest
from patcher.core.record import record
from patcher.core.schema_drift import ignore_patterns
from patcher.core.terms import terms

DEFAULT_SOURCE = str(Path(__file__).resolve().parent.parent / "migrations")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# IAM auth sends a token that is as good as a password for 15 minutes: only to a server whose
# certificate was verified (require would hand it to anyone on the path).
IAM_SSLMODES = ("verify-ca", "verify-full")
# Up to the last "@" of the authority: a password may hold an unencoded "@".
_URI_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):[^/?#]*@")
_KV_PASSWORD = re.compile(r"""(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"&]+)""")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*")
TARGET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+$")


@record
class Config:
    source: str = DEFAULT_SOURCE
    expected_bucket_owner: str | None = None
    db_secret_arn: str | None = None
    database_url: str | None = None
    schema: str = "public"
    table: str = "schema_migrations"
    lock_wait_seconds: float = 60.0
    connect_budget_seconds: float = 60.0  # issue 33: how long to keep trying to reach the writer
    lock_timeout: str = "10s"
    statement_timeout: str | None = None
    time_margin_seconds: float = 30.0
    sslmode: str | None = None
    sslrootcert: str | None = None
    iam_auth: bool = False
    max_script_mb: float = 100.0
    layout: str = "auto"
    drift_ignore: tuple[str, ...] = ()  # PATCHER_DRIFT_IGNORE (SPEC 13): fnmatch patterns
    # fleets: (name, secret ARN) pairs from PATCHER_TARGETS, in the order given
    targets: tuple[tuple[str, str], ...] = ()
    release_alias: str | None = None  # PATCHER_RELEASE_ALIAS (SPEC 11; app/release.py)
    # PostgreSQL's DETAIL (row values) in the results the state machine stores (issue 28)
    results_keep_detail: bool = False

    @property
    def max_script_bytes(self) -> int:
        """PATCHER_MAX_SCRIPT_MB in bytes (1 MB = 1,048,576 bytes)."""
        return int(self.max_script_mb * 1024 * 1024)

    @property
    def statement_timeout_ms(self) -> int | None:
        return duration_ms(self.statement_timeout) if self.statement_timeout else None

    def __repr__(self) -> str:
        """Every field, the database URL without its password (repr and str alike)."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "database_url" and value:
                value = redact_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Config({', '.join(shown)})"


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    source: str | None = None,
    database_url: str | None = None,
) -> Config:
    """Read and check every setting; explicit arguments (CLI flags) win over the environment."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    url = database_url or get("PATCHER_DATABASE_URL")
    secret = get("PATCHER_DB_SECRET_ARN")
    targets = _targets(get("PATCHER_TARGETS"))
    if database_url:
        secret, targets = None, ()  # an explicit --database-url replaces the deployed ones
    given = [name for name, value in _database_settings(url, secret, targets) if value]
    if len(given) != 1:
        raise ConfigError(
            f"{terms().give_database}set exactly one of PATCHER_DATABASE_URL (a libpq URL), "
            "PATCHER_DB_SECRET_ARN "
            "(a Secrets Manager secret) and PATCHER_TARGETS (a fleet: name -> secret ARN); "
            f"{' and '.join(given) + ' are' if given else 'none is'} set"
        )
    config = Config(
        source=source or get("PATCHER_SOURCE") or DEFAULT_SOURCE,
        expected_bucket_owner=get("PATCHER_EXPECTED_BUCKET_OWNER"),
        db_secret_arn=secret,
        database_url=url,
        schema=_identifier("PATCHER_SCHEMA", get("PATCHER_SCHEMA") or "public"),
        table=_table(get("PATCHER_TABLE") or "schema_migrations"),
        lock_wait_seconds=_number(
            "PATCHER_LOCK_WAIT_SECONDS", get("PATCHER_LOCK_WAIT_SECONDS"), 60
        ),
        connect_budget_seconds=_number(
            "PATCHER_CONNECT_BUDGET_SECONDS", get("PATCHER_CONNECT_BUDGET_SECONDS"), 60
        ),
        lock_timeout=_duration("PATCHER_LOCK_TIMEOUT", get("PATCHER_LOCK_TIMEOUT") or "10s"),
        statement_timeout=_optional_duration(
            "PATCHER_STATEMENT_TIMEOUT", get("PATCHER_STATEMENT_TIMEOUT")
        ),
        time_margin_seconds=_number(
            "PATCHER_TIME_MARGIN_SECONDS", get("PATCHER_TIME_MARGIN_SECONDS"), 30
        ),
        sslmode=_sslmode(get("PATCHER_DB_SSLMODE")),
        sslrootcert=_sslrootcert(get("PATCHER_DB_SSLROOTCERT")),
        iam_auth=_boolean("PATCHER_DB_IAM_AUTH", get("PATCHER_DB_IAM_AUTH")),
        max_script_mb=_max_script_mb(get("PATCHER_MAX_SCRIPT_MB")),
        layout=_layout(get("PATCHER_LAYOUT")),
        drift_ignore=ignore_patterns(get("PATCHER_DRIFT_IGNORE")),
        targets=targets,
        release_alias=release_alias(get("PATCHER_RELEASE_ALIAS")),
        results_keep_detail=_boolean(
            "PATCHER_RESULTS_KEEP_DETAIL", get("PATCHER_RESULTS_KEEP_DETAIL")
        ),
    )
    if config.expected_bucket_owner and not re.fullmatch(r"\d{12}", config.expected_bucket_owner):
        raise ConfigError("PATCHER_EXPECTED_BUCKET_OWNER must be a 12-digit AWS account id")
    if config.iam_auth and config.sslmode not in IAM_SSLMODES:
        raise ConfigError(
            f"PATCHER_DB_IAM_AUTH=true needs PATCHER_DB_SSLMODE verify-full (or verify-ca), not "
            f"{config.sslmode or 'unset'}: the IAM auth token is a credential and is sent only "
            "to a server whose certificate is verified; set PATCHER_DB_SSLMODE=verify-full and "
            "PATCHER_DB_SSLROOTCERT to the RDS CA bundle"
        )
    return config


def _layout(value: str | None) -> str:
    from patcher.sources.layouts import LAYOUTS

    layout = (value or "auto").lower()
    if layout not in LAYOUTS:
        raise ConfigError(
            f"PATCHER_LAYOUT must be one of {', '.join(LAYOUTS)}, not {(value or '')[:60]!r}"
            " (SPEC 2a: the file layout of the migration source)"
        )
    return layout


def _database_settings(
    url: str | None, secret: str | None, targets: object
) -> list[tuple[str, object]]:
    return [
        ("PATCHER_DATABASE_URL", url),
        ("PATCHER_DB_SECRET_ARN", secret),
        ("PATCHER_TARGETS", targets),
    ]


def _targets(value: str | None) -> tuple[tuple[str, str], ...]:
    """PATCHER_TARGETS: a JSON object, target name -> Secrets Manager secret ARN (SPEC 3)."""
    if value is None:
        return ()
    import json

    try:
        loaded = json.loads(value)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict) or not loaded:
        raise ConfigError(
            "PATCHER_TARGETS must be a non-empty JSON object of target name -> secret ARN, "
            'e.g. {"staging": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}'
        )
    for name, arn in loaded.items():
        if not TARGET_NAME.match(name):
            raise ConfigError(
                f"PATCHER_TARGETS: target name {name[:80]!r} must be 1 to 64 letters, digits, "
                "'_', '.' or '-'"
            )
        if not isinstance(arn, str) or not _SECRET_ARN.match(arn):
            raise ConfigError(
                f"PATCHER_TARGETS: the value of {name!r} must be a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
            )
    return tuple(loaded.items())


def select_database(config: Config, name: str | None) -> Config:
    """The configuration for one request's ``database`` (SPEC section 4): the named target's
    secret; no name is fine for one target or none; refusals list the names configured."""
    known = dict(config.targets)
    if not known:
        if name is None:
            return config
        raise InvalidRequest(
            f"{terms().word('database')} {name[:200]!r} was given, but this deployment has a "
            f"single database (PATCHER_TARGETS is not set): leave {terms().word('database')} out"
        )
    if name is None and len(known) == 1:
        name = next(iter(known))
    if name is None:
        raise InvalidRequest(
            f"{terms().word('database')} is required: {len(known)} targets are configured "
            f"({', '.join(known)}); send e.g. "
            + terms().action("migrate", database=next(iter(known)))
        )
    if name not in known:
        raise InvalidRequest(
            f"unknown database {name[:200]!r}: the configured targets are {', '.join(known)}"
        )
    return replace(config, db_secret_arn=known[name])


def redact_url(url: str) -> str:
    """A libpq URL or conninfo string with its password, wherever it sits, replaced by ***."""
    url = _URI_PASSWORD.sub(r"\1:***@", url)
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    return _KV_PASSWORD.sub(r"\1***", url)


def _sslmode(value: str | None) -> str | None:
    if value is not None and value not in SSLMODES:
        raise ConfigError(f"PATCHER_DB_SSLMODE={value!r} must be one of {', '.join(SSLMODES)}")
    return value


def _sslrootcert(value: str | None) -> str | None:
    """The CA file must exist: fail closed now rather than let libpq fall back or fail late."""
    if value is None or value == "system":  # libpq >= 16: the system's trust store
        return value
    if not Path(value).is_file():
        raise ConfigError(
            f"PATCHER_DB_SSLROOTCERT={value} does not exist or is not a file, so the database "
            "server's certificate cannot be verified. In Lambda, build the package with the RDS "
            "CA bundle (make package CA_BUNDLE=global-bundle.pem; see docs/security.md"
            "); elsewhere, point PATCHER_DB_SSLROOTCERT at the CA file, or unset it"
        )
    return value


def _boolean(name: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise ConfigError(f"{name}={value!r} must be true or false")
    return value.lower() == "true"


def duration_ms(text: str) -> int:
    """A PostgreSQL duration such as '10s', '500ms', '2min' (bare numbers are ms)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    return int(match[1]) * _UNIT_MS[match[2]]


def _identifier(name: str, value: str) -> str:
    if not _IDENT.match(value):
        raise ConfigError(
            f"{name}={value!r} is not a plain PostgreSQL identifier (letters, digits, _ and $, "
            "at most 63 characters, not starting with a digit)"
        )
    return value


def _table(value: str) -> str:
    """The history table's name: ``<table>_log`` must fit PostgreSQL's 63-byte identifiers."""
    table = _identifier("PATCHER_TABLE", value)
    if len(table.encode()) > 59:
        raise ConfigError(
            f"PATCHER_TABLE={table!r} is {len(table.encode())} bytes; at most 59 are allowed, "
            f"because the audit log table {table}_log must fit PostgreSQL's 63-byte names "
            "(longer ones are cut, and the log would collide with the history table)"
        )
    return table


def _max_script_mb(value: str | None) -> float:
    if value is None:
        return 100.0
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 10_240:
        raise ConfigError(
            f"PATCHER_MAX_SCRIPT_MB={value!r} must be a number of megabytes above 0 and at "
            "most 10240 (the largest script read; default 100)"
        )
    return number


def _number(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < 86_400:
        raise ConfigError(f"{name}={value!r} must be a number of seconds from 0 to 86399")
    return number


def _duration(name: str, value: str) -> str:
    try:
        duration_ms(value)
    except ValueError:
        raise ConfigError(
            f"{name}={value!r} is not a PostgreSQL duration; use e.g. '10s', '500ms', '2min'"
        ) from None
    return value.strip().replace(" ", "")


def _optional_duration(name: str, value: str | None) -> str | None:
    return None if value is None else _duration(name, value)
