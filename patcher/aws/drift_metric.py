"""The ``SchemaDrift`` metric of a ``drift`` invocation (SPEC section 13): how many objects
differ from the snapshot (0: in sync), in the run's EMF document (dimension ``service``: what
the template's alarm watches, the worst target of any run) and once more per target
(dimensions ``service`` and ``database``: which one). Nothing when drift could not compare
(no snapshot: the result's error says so, and the alarm stays quiet)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from patcher.app.result import RunResult

METRIC = "SchemaDrift"
DEFAULT_TARGET = "default"  # the database dimension of a deployment without PATCHER_TARGETS


def publish(
    metrics: Metrics, result: RunResult, database: str | None, *, service: str, namespace: str
) -> None:
    if result.action != "drift" or result.differences is None:
        return
    count = len(result.differences)
    metrics.add_metric(METRIC, MetricUnit.Count, count)
    with single_metric(METRIC, MetricUnit.Count, count, namespace=namespace) as metric:
        metric.add_dimension("service", service)
        metric.add_dimension("database", database or DEFAULT_TARGET)
