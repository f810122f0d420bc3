"""StackFlowPatcher: numbered SQL migrations for PostgreSQL, from S3 or a directory.

Read in this order:

- ``runner.py`` tells the whole story: list the source, take the advisory lock, read the
  history, plan, run each step, report. Its policy continues in ``steps.py`` (deadline,
  lock_timeout retries, error locations) and ``preview.py`` (risks, verification).
- ``planner.py`` is pure: catalog + history + request -> steps, with every validation
  (dirty, missing, drift, order, reversibility) done before anything changes.
- ``sources/`` lists and reads files (``local.py``, ``s3.py``) behind one protocol and one
  name parser (``naming.py``); ``scripts.py`` + ``sqlscript.py`` turn bytes into statements.
- ``postgres.py`` only locks, runs and records (history table, audit log).
- ``handler.py`` (Lambda) and ``cli.py`` (``patcher``) are thin adapters over ``service.py``;
  ``config.py`` is the only reader of the environment.
"""

__version__ = "0.1.0"
