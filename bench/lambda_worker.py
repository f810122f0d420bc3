"""One Lambda execution environment for bench/fleet_procs.py: ``python -m bench.lambda_worker``.

It reads one JSON line per invocation on stdin (``env``: the function's environment, ``payload``,
``custom``: the ClientContext's custom part), runs ``patcher.handler.lambda_handler`` with a
Lambda-like context and writes one JSON line back (``result``, ``cpu``: the handler's CPU
seconds). Like a warm container it keeps its imports, caches and clients between invocations;
the function's logs go to /dev/null, so stdout carries only the answers.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from typing import Any


def main() -> int:
    answers = os.fdopen(os.dup(1), "w")  # the protocol's own copy of stdout
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # before the handler's import: Powertools binds its logger to stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    from patcher.dev.devrun import LambdaContext
    from patcher.handler import lambda_handler

    for line in sys.stdin:
        asked: dict[str, Any] = json.loads(line)
        os.environ.update(asked["env"])
        custom = asked.get("custom")
        context = LambdaContext(
            client_context=types.SimpleNamespace(custom=custom) if custom else None
        )
        started = time.process_time()
        result = lambda_handler(asked["payload"], context)
        cpu = time.process_time() - started
        answers.write(json.dumps({"result": result, "cpu": cpu}) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
