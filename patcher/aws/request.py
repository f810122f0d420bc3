"""The Lambda payload, validated strictly (SPEC section 4): wrong types and unknown keys refused."""

from __future__ import annotations

import reprlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patcher.core.errors import InvalidRequest
from patcher.core.models import ACTIONS, MAX_VERSION, Action, Request

QUOTE_CHARS = 200  # a refusal quotes at most this much of any key or value it names
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 4, 4, 80, 80


class Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    action: Action
    dry_run: bool = False
    target: int | None = Field(default=None, ge=0, le=MAX_VERSION)
    steps: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    verify: bool = False
    phase: Literal["expand", "contract"] | None = None  # migrate only (SPEC 11)
    database: str | None = Field(default=None, min_length=1, max_length=64)
    from_: Literal["golang-migrate", "flyway", "dbmate", "goose", "sqlx"] | None = Field(
        default=None, alias="from"
    )  # adopt: the tool whose history is taken over
    table: str | None = Field(default=None, max_length=127)  # adopt: its table, if renamed


KEYS = [field.alias or name for name, field in Payload.model_fields.items()]


def parse_payload(event: Any) -> Request:
    """Turn an invocation event into a Request, or raise InvalidRequest naming every problem."""
    if not isinstance(event, dict):
        raise InvalidRequest(
            f'the payload must be a JSON object such as {{"action": "migrate"}}, '
            f"got {type(event).__name__}"
        )
    try:
        payload = Payload.model_validate(event)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_url=False)]
        raise InvalidRequest(
            "the payload was refused, nothing ran: " + "; ".join(problems[:10]),
            problems=problems[:10],
        ) from None
    fields = payload.model_dump()
    return Request(adopt_from=fields.pop("from_"), adopt_table=fields.pop("table"), **fields)


def _describe(err: Any) -> str:
    where = quote(".".join(str(part) for part in err["loc"]) or "payload")
    if err["type"] == "extra_forbidden":
        return (
            f"unknown key {where}: allowed keys are "
            f"{', '.join(KEYS)} (the source and database come from configuration)"
        )
    if err["type"] == "missing":
        return f"{where} is required (one of {', '.join(ACTIONS)})"
    return f"{where}: {err['msg'][:QUOTE_CHARS]} (got {quote(err.get('input'), 60)})"


def quote(value: Any, chars: int = QUOTE_CHARS) -> str:
    """``repr(value)``, quoting at most ``chars`` characters of it and saying how long it was:
    a refusal never echoes a 3 MB key back (twice) into a result that must fit 6 MB."""
    if isinstance(value, str):
        if len(value) <= chars:
            return repr(value)
        return f"{value[:chars]!r}… ({len(value):,} characters)"
    try:
        shown = _REPR.repr(value)
    except Exception:  # a hostile object whose repr fails: name its type only
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= chars else shown[:chars] + "…"


def action_of(event: Any) -> str:
    """The action a refused payload named, for the result's ``action`` field ("unknown" when
    it named none of the five: a result never echoes arbitrary input as its action)."""
    action = event.get("action") if isinstance(event, dict) else None
    return action if isinstance(action, str) and action in ACTIONS else "unknown"


def dry_run_of(event: Any) -> bool:
    return isinstance(event, dict) and event.get("dry_run") is True
