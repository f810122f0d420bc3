"""The combinations of a request the contract refuses (SPEC sections 4 and 6), checked before
anything runs, by whoever builds a ``Request`` and again by the planner."""

from __future__ import annotations

from patcher.core.errors import InvalidRequest
from patcher.core.models import ACTIONS, MAX_VERSION, Request


def validate_request(request: Request) -> None:
    """Refuse combinations the contract does not allow, naming the fix."""
    if request.action not in ACTIONS:
        raise InvalidRequest(f"unknown action {request.action!r}; use one of: {', '.join(ACTIONS)}")
    if request.target is not None and not 0 <= request.target <= MAX_VERSION:
        raise InvalidRequest(
            f"target {request.target} is out of range; give a version from 0 to {MAX_VERSION}"
        )
    if request.steps is not None:
        if request.action != "rollback":
            raise InvalidRequest("steps is only for rollback; use target to bound a migrate")
        if request.steps < 1:
            raise InvalidRequest(f"steps must be 1 or more, got {request.steps}")
        if request.target is not None:
            raise InvalidRequest("give either steps or target for a rollback, not both")
    if request.verify and not (request.dry_run and request.action in ("migrate", "rollback")):
        raise InvalidRequest("verify needs dry_run: true and the action migrate or rollback")
    if request.action in ("status", "repair") and request.target is not None:
        raise InvalidRequest(f"{request.action} takes no target")
    if request.action == "adopt" and request.adopt_from is None:
        raise InvalidRequest("adopt needs from: golang-migrate, flyway, dbmate, goose or sqlx")
    if request.action != "adopt" and (request.adopt_from or request.adopt_table) is not None:
        raise InvalidRequest("from and table are for adopt only (the other tool's history)")
    if request.action == "adopt" and (request.target is not None or request.steps is not None):
        raise InvalidRequest("adopt takes no target or steps: it records what the tool applied")
    if request.action == "baseline" and not request.target:
        raise InvalidRequest(
            "baseline needs a target of 1 or more: every version up to it is marked as applied"
        )
