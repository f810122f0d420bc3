"""The AWS SDK's loggers stay at WARNING, whatever level the root logger is set to.

At DEBUG, botocore logs every response body (``Response body: b'{"SecretString": ...}'``: the
GetSecretValue answer with the database password), every request's signed headers, and urllib3
every connection. A root logger at DEBUG (the Lambda runtime's ``AWS_LAMBDA_LOG_LEVEL``, a
``logging.basicConfig(level=DEBUG)`` while debugging the CLI) would write them all; a level set
on these loggers themselves wins over the root's, so they are pinned here, by the Lambda
handlers and the CLI, before any client is made. ``POWERTOOLS_LOG_LEVEL=DEBUG`` still shows
patcher's own lines (and PostgreSQL's DETAIL), which hold no credential.
"""

from __future__ import annotations

import logging

# Every logger the SDK's stack writes to (their children inherit the level: botocore.parsers,
# botocore.endpoint, urllib3.connectionpool, ...).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def pin_sdk_loggers(level: int = logging.WARNING) -> None:
    """Set the SDK's loggers to ``level`` (WARNING): their DEBUG and INFO records are dropped
    even when the root logger is at DEBUG."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(level)
