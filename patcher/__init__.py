"""StackFlowPatcher: numbered SQL migrations for PostgreSQL, from S3 or a directory.

Read in this order. Imports run one way (tests/unit/test_layers.py checks every one):
``aws/``, ``cli/`` -> ``app/`` -> ``engine/`` -> ``sources/``, ``db/``, ``sql/`` -> ``core/``.

- ``engine/runner.py`` tells the whole story: list the source, take the advisory lock, read
  the history, plan, run each step, report. Its policy continues in ``engine/steps.py``
  (deadline, lock_timeout retries, error locations) and ``engine/preview.py`` (risks,
  verification); ``engine/context.py`` holds what a run shares, ``engine/outcome.py`` what it
  reports.
- ``engine/planner.py`` is pure: catalog + history + request -> steps, with every validation
  (dirty, missing, drift, order, reversibility) done before anything changes.
- ``engine/ports.py``: the ``MigrationBackend`` protocol, the only way the engine reaches a
  database; ``sources/base.py``: the ``MigrationSource`` protocol.
- ``core/``: the vocabulary every layer shares (``models.py``, ``errors.py``, ...).
- ``sources/``: where files come from (``local.py``, ``s3.py``) and the one name parser and
  catalog builder (``catalog.py``); ``sql/``: bytes to statements (lexer, scripts) and the
  dry-run risk rules; ``db/``: the PostgreSQL backend; it only locks, runs and records.
- ``app/``: the commands as plain functions (``commands.py``: ``migrate``, ``rollback``,
  ``status``, ``baseline``, ``repair``, ``adopt``), ``config.py`` (the only reader of the
  environment), ``secrets.py`` and ``result.py`` (the SPEC result and its 6 MB rule).
- ``aws/``: the Lambda handler (``patcher.handler.lambda_handler`` re-exports it, SPEC 4), its
  payload and the fleet summary function; ``cli/``: the ``patcher`` command; ``lint/``:
  ``patcher lint``'s checks, beside ``app/``, for ``cli/`` only.
- ``dev/``: ``make run`` and local clusters; development only, not in the Lambda package.
"""

__version__ = "0.1.0"
