"""The Lambda's handler path, ``patcher.handler.lambda_handler`` (SPEC section 4, template.yaml).

The one package ``__init__`` that is not empty: it re-exports the handler, which lives in
``patcher.aws.handler`` with the other AWS adapters, so that the documented path keeps working.
It imports nothing else (tests/unit/test_layers.py holds it to that).
"""

from patcher.aws.handler import lambda_handler

__all__ = ["lambda_handler"]
