"""PostgreSQL's DETAIL out of what is written down: logs, and results a caller stores.

A failed statement's DETAIL can quote row values (``Key (email)=(ann@example.com) already
exists``). The engine carries it apart in the result's error (``detail``) and at the end of the
message as `` (DETAIL)``. Whoever invoked the function directly is given it; what is kept
where many can read it is not, unless allowed:

- the function's log lines, unless the log level is DEBUG (``patcher.aws.handler``);
- the results the state machine stores (its execution history, the Distributed Map's result
  files, a failed target's ``failed/<database>.json``), unless the stack's ResultsKeepDetail
  (``PATCHER_RESULTS_KEEP_DETAIL``) is true. The state machine says it stores the result in
  its invoke's client context: ``{"custom": {"invoked_by": "the state machine",
  "stores_result": "true"}}`` (statemachine/patcher.asl.json, base64).
"""

from __future__ import annotations

from typing import Any

STORES_RESULT = "stores_result"  # the client context's custom key the state machine sets
STORED_HINT = (
    "left out of results the state machine stores (it can quote row values); set the stack's "
    "ResultsKeepDetail to true to keep it, or read it in the audit log table"
)


def without_detail(error: dict[str, Any] | None, hint: str) -> dict[str, Any] | None:
    """``error`` without PostgreSQL's DETAIL (apart and in the message), ``detail_hidden``
    saying why and where to find it; errors without DETAIL as they are."""
    if not error or "detail" not in error:
        return error
    shown = {k: v for k, v in error.items() if k != "detail"}
    detail = str(error["detail"])
    message = str(error.get("message", "")).replace(f" ({detail})", "", 1)
    shown["message"] = message.replace(detail, "(detail hidden)") if detail else message
    shown["detail_hidden"] = hint
    return shown


def stores_result(context: Any) -> bool:
    """Whether the caller stores the result (the state machine says so in its client
    context)."""
    client = getattr(context, "client_context", None)
    custom = getattr(client, "custom", None) or {}
    return isinstance(custom, dict) and str(custom.get(STORES_RESULT, "")).lower() == "true"


def for_caller(rendered: dict[str, Any], context: Any, keep_detail: bool) -> dict[str, Any]:
    """The rendered result as this caller gets it: without DETAIL when it stores it and the
    stack does not allow that."""
    if keep_detail or not stores_result(context) or not rendered.get("error"):
        return rendered
    return {**rendered, "error": without_detail(rendered["error"], STORED_HINT)}
