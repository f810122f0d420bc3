"""template.yaml: cfn-lint is clean and the function's IAM stays least-privilege.

`iam_problems` is the checker; the mutation tests prove it can fail.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
FUNCTION = "StackFlowPatcher"

# Managed policies the role may carry, and why they are not inline.
ALLOWED_MANAGED = {
    "AWSLambdaVPCAccessExecutionRole",  # ENIs for VpcConfig (ec2 actions need Resource "*")
    "AWSXRayDaemonWriteAccess",  # Tracing: Active (xray actions need Resource "*")
}
BUCKET_ARN = "arn:${AWS::Partition}:s3:::${MigrationsBucket}"
OBJECTS_ARN = BUCKET_ARN + "/${MigrationsPrefix}*"
LOG_STREAMS_ARN = re.compile(
    r"arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}"
    r":log-group:\$\{(?P<group>\w+)\}:\*"
)
S3_ACTIONS = {"s3:ListBucket": {BUCKET_ARN}, "s3:GetObject": {OBJECTS_ARN}}
# IAM auth: one database user of one cluster, nothing wider.
DB_USER_ARN = (
    "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}"
    ":dbuser:${DatabaseClusterResourceId}/${DatabaseUser}"
)
CA_BUNDLE_IN_LAMBDA = "/var/task/patcher/certs/rds-global-bundle.pem"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub...) into their long form."""


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=CfnLoader)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """A resource or ARN as comparable text: "x", !Sub "x" and !Ref X (as "${X}")."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Ref" and isinstance(inner, str):
            return "${" + inner + "}"
        if key == "Fn::Sub" and isinstance(inner, str):
            return inner
    return None


def _statements(items: Any, conditional: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every statement, both branches of Fn::If, with whether it sits under a condition."""
    for item in _as_list(items):
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            _condition, *branches = item["Fn::If"]
            for branch in branches:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield from _statements(branch, True)
        elif isinstance(item, dict):
            yield item, conditional


def _managed_arns(items: list[Any]) -> Iterator[Any]:
    """Every managed policy ARN, both branches of an Fn::If (AWS::NoValue left out)."""
    for item in items:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            _condition, *branches = item["Fn::If"]
            yield from _managed_arns([b for b in branches if b != {"Ref": "AWS::NoValue"}])
        else:
            yield item


def _function_role(template: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    function = template["Resources"][FUNCTION]["Properties"]
    role = function.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        name = role["Fn::GetAtt"][0]
        return name, template["Resources"].get(name)
    return None, None


def _statement_problems(
    where: str, statement: dict[str, Any], conditional: bool, log_groups: set[str]
) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement or "NotResource" in statement:
        return [f"{where}: NotAction/NotResource grant more than they name"]
    actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
    resources = [_text(r) for r in _as_list(statement.get("Resource"))]
    problems = []
    if not actions or len(actions) != len(_as_list(statement.get("Action"))):
        problems.append(f"{where}: actions must be literal strings")
    for action in actions:
        if action == "*" or action.endswith(":*") or "*" in action:
            problems.append(f"{where}: wildcard action {action!r}")
    if "*" in resources or None in resources:
        problems.append(f"{where}: resource {statement.get('Resource')!r} is not a named resource")
        return problems
    services = {a.split(":", 1)[0] for a in actions}
    if len(services) != 1:
        return [*problems, f"{where}: one service per statement, got {sorted(services)}"]
    (service,) = services
    condition = statement.get("Condition") or {}
    if service == "s3":
        for action in actions:
            allowed = S3_ACTIONS.get(action)
            if allowed is None:
                problems.append(f"{where}: S3 action {action} is not needed")
            elif not set(resources) <= allowed:
                problems.append(f"{where}: {action} on {resources} is outside bucket/prefix")
        if "s3:ListBucket" in actions:
            prefix = condition.get("StringLike", {}).get("s3:prefix")
            if _text(prefix) != "${MigrationsPrefix}*":
                problems.append(
                    f"{where}: s3:ListBucket needs Condition s3:prefix ${{MigrationsPrefix}}*"
                )
    elif service == "secretsmanager":
        allowed = (["${DatabaseSecretArn}"], ["${TargetSecretArns}"])
        if actions != ["secretsmanager:GetSecretValue"] or resources not in allowed:
            problems.append(
                f"{where}: only GetSecretValue on DatabaseSecretArn or TargetSecretArns is allowed"
            )
        if not conditional:
            problems.append(f"{where}: the secret grant must depend on the secret being given")
    elif service == "kms":
        if actions != ["kms:Decrypt"] or resources != ["${SecretKmsKeyArn}"]:
            problems.append(f"{where}: only kms:Decrypt on SecretKmsKeyArn is allowed")
        if not conditional:
            problems.append(f"{where}: kms statement must depend on SecretKmsKeyArn being set")
        via = _text(condition.get("StringEquals", {}).get("kms:ViaService"))
        if via != "secretsmanager.${AWS::Region}.amazonaws.com":
            problems.append(f"{where}: kms:Decrypt needs kms:ViaService secretsmanager")
    elif service == "rds-db":
        if actions != ["rds-db:connect"] or resources != [DB_USER_ARN]:
            problems.append(
                f"{where}: only rds-db:connect on {DB_USER_ARN} (one user of one cluster)"
            )
        if not conditional:
            problems.append(f"{where}: rds-db:connect must depend on DatabaseIamAuth")
    elif service == "logs":
        if not set(actions) <= {"logs:CreateLogStream", "logs:PutLogEvents"}:
            problems.append(f"{where}: logs actions beyond writing {actions}")
        for resource in resources:
            match = LOG_STREAMS_ARN.fullmatch(resource or "")
            if not match or match["group"] not in log_groups:
                problems.append(f"{where}: logs on {resource!r}, not the function's log group")
    elif service == "lambda":  # the release gate (SPEC 11): exactly the application's alias
        if actions != ["lambda:GetAlias"] or resources != ["${ReleaseAliasArn}"]:
            problems.append(f"{where}: only lambda:GetAlias on exactly ReleaseAliasArn")
        if not conditional:
            problems.append(f"{where}: lambda:GetAlias must depend on ReleaseAliasArn being set")
    else:
        problems.append(f"{where}: service {service!r} is not needed by the patcher")
    return problems


def iam_problems(template: dict[str, Any]) -> list[str]:
    """Why the patcher function's IAM is broader than it needs to be (empty when fine)."""
    resources = template.get("Resources", {})
    function = resources[FUNCTION]["Properties"]
    problems = []
    if "Policies" in function:
        problems.append("function: use the explicit role, not SAM Policies (they add more)")
    role_name, role = _function_role(template)
    if role is None or role.get("Type") != "AWS::IAM::Role":
        return [*problems, "function: Role must be !GetAtt <an AWS::IAM::Role>.Arn"]
    props = role["Properties"]
    log_groups = {k for k, v in resources.items() if v.get("Type") == "AWS::Logs::LogGroup"}
    for arn in _managed_arns(props.get("ManagedPolicyArns", [])):
        name = (_text(arn) or "").rsplit("/", 1)[-1]
        if name not in ALLOWED_MANAGED:
            problems.append(f"{role_name}: managed policy {arn!r} is not on the allow-list")
    trust = list(_statements(props["AssumeRolePolicyDocument"]["Statement"]))
    principals = [s.get("Principal") for s, _ in trust]
    if principals != [{"Service": "lambda.amazonaws.com"}]:
        problems.append(f"{role_name}: only lambda.amazonaws.com may assume the role")
    for policy in props.get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for index, (statement, conditional) in enumerate(_statements(statements)):
            where = f"{role_name}/{policy['PolicyName']}[{statement.get('Sid', index)}]"
            problems += _statement_problems(where, statement, conditional, log_groups)
    return problems


# --- cfn-lint ------------------------------------------------------------------------------


def _cfn_lint(path: Path) -> list[str]:
    try:
        from cfnlint.api import ManualArgs, lint_file
    except ImportError:  # pragma: no cover - environment problem, must not pass silently
        pytest.fail("cfn-lint is not installed in this venv: pip install 'cfn-lint==1.58.0'")
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message} ({m.filename}:{m.linenumber})" for m in matches]


@pytest.mark.slow
def test_cfn_lint_reports_nothing() -> None:
    assert _cfn_lint(TEMPLATE) == []


@pytest.mark.slow
def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Timeout: 900", "Timeout: 90000"))
    assert any(line.startswith("E") for line in _cfn_lint(broken))


# --- IAM -----------------------------------------------------------------------------------


def test_iam_is_least_privilege() -> None:
    assert iam_problems(load_template()) == []


def _inline_statements(template: dict[str, Any]) -> list[Any]:
    _, role = _function_role(template)
    assert role is not None
    return role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::Sub": OBJECTS_ARN}},
        {"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::Sub": OBJECTS_ARN}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other-bucket/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": BUCKET_ARN + "/*"}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Sub": OBJECTS_ARN}},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": {"Fn::Sub": BUCKET_ARN}},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:other",
        },
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "SecretKmsKeyArn"}},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": "arn:aws:rds-db:*"},
        {
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": {"Fn::Sub": DB_USER_ARN.replace("${DatabaseUser}", "*")},
        },
        {
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": {"Fn::Sub": DB_USER_ARN.replace("${DatabaseClusterResourceId}", "*")},
        },
        # The exact grant, but unconditional: it would hold with IAM auth off too.
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": {"Fn::Sub": DB_USER_ARN}},
        {"Effect": "Allow", "Action": "rds-db:*", "Resource": {"Fn::Sub": DB_USER_ARN}},
        {"Effect": "Allow", "Action": "s3:GetObjectVersion", "Resource": {"Fn::Sub": OBJECTS_ARN}},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": {"Fn::Sub": OBJECTS_ARN}},
    ],
    ids=lambda s: f"{s.get('Action', s.get('NotAction'))}@{s['Resource']}",
)
def test_checker_rejects_an_injected_statement(statement: dict[str, Any]) -> None:
    template = copy.deepcopy(load_template())
    _inline_statements(template).append(statement)
    assert iam_problems(template) != []


def _conditional_statements(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Sid -> (condition name, statement) for the Fn::If statements of the inline policy."""
    found = {}
    for item in _inline_statements(template):
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            condition, statement, otherwise = item["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            found[statement["Sid"]] = (condition, statement)
    return found


def test_iam_auth_grant_is_exactly_one_user_and_only_when_enabled() -> None:
    template = load_template()
    condition, statement = _conditional_statements(template)["ConnectWithIamAuth"]
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == {"Fn::Sub": DB_USER_ARN}
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "DatabaseIamAuth"}, "true"]}
    params = template["Parameters"]
    assert params["DatabaseIamAuth"]["Default"] == "false"
    assert {"DatabaseClusterResourceId", "DatabaseUser"} <= set(params)
    # CloudFormation refuses IAM auth without the two, or with an unverified server.
    rule = template["Rules"]["IamAuthNeedsClusterAndUser"]
    asserted = str(rule["Assertions"])
    assert "DatabaseClusterResourceId" in asserted and "DatabaseUser" in asserted
    assert "require" in asserted
    env = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    assert env["PATCHER_DB_IAM_AUTH"] == {"Ref": "DatabaseIamAuth"}


def test_s3_grants_only_what_the_source_calls() -> None:
    statements = [s for s, _ in _statements(_inline_statements(load_template()))]
    s3 = sorted(a for s in statements for a in _as_list(s["Action"]) if a.startswith("s3:"))
    assert s3 == ["s3:GetObject", "s3:ListBucket"]


def test_tls_is_verified_by_default_with_the_shipped_bundle() -> None:
    template = load_template()
    env = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    assert template["Parameters"]["DatabaseSslMode"]["Default"] == "verify-full"
    assert env["PATCHER_DB_SSLMODE"] == {"Ref": "DatabaseSslMode"}
    assert env["PATCHER_DB_SSLROOTCERT"] == CA_BUNDLE_IN_LAMBDA
    build = (REPO / "scripts" / "build_package.py").read_text()
    assert f'CA_BUNDLE_PATH = "{CA_BUNDLE_IN_LAMBDA.removeprefix("/var/task/")}"' in build


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_a_failed_migration_raises_an_alarm() -> None:
    template = load_template()
    alarms = _alarms(template)
    env = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    failed = alarms["MigrationsFailedAlarm"]
    # What the handler publishes: the metric name, its namespace and service dimension.
    handler = (REPO / "patcher" / "aws" / "handler.py").read_text()
    assert '"MigrationsFailed"' in handler
    assert "Metrics(namespace=NAMESPACE, service=SERVICE)" in handler
    assert '"RunsLocked"' in handler
    # A failed migration or a locked run (issue 28): the sum of the two metrics, each a Sum.
    stats = {m["Id"]: m["MetricStat"] for m in failed["Metrics"] if "MetricStat" in m}
    assert {i: m["Metric"]["MetricName"] for i, m in stats.items()} == {
        "failed": "MigrationsFailed",
        "locked": "RunsLocked",
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == {"Ref": "MetricsNamespace"}
        service = [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
        assert stat["Metric"]["Dimensions"] == service
        assert (stat["Stat"], stat["Period"]) == ("Sum", 60)
    (returned,) = [m for m in failed["Metrics"] if m.get("ReturnData")]
    assert returned["Expression"] == "FILL(failed, 0) + FILL(locked, 0)"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    errors = alarms["FunctionErrorsAlarm"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": FUNCTION}}]
    assert errors["Statistic"] == "Sum"
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for alarm in (failed, errors):
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"  # one failure is enough
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == topic
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_drift_is_scheduled_only_when_asked_and_raises_an_alarm() -> None:
    """SPEC 13: the EventBridge schedule is off by default; SchemaDrift has an alarm."""
    template = load_template()
    assert template["Parameters"]["DriftSchedule"]["Default"] == ""
    resources = template["Resources"]
    for name in ("DriftScheduleRule", "DriftScheduleRole"):
        assert resources[name]["Condition"] == "HasDriftSchedule"
    rule = resources["DriftScheduleRule"]["Properties"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "Orchestrator"}
    inputs = [json.loads(text) for text in target["Input"]["Fn::If"][1:]]
    assert [i["action"] for i in inputs] == ["drift", "drift"]
    assert inputs[0]["databases"] == "*" and "databases" not in inputs[1]
    alarm = _alarms(template)["SchemaDriftAlarm"]
    env = resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    assert (alarm["MetricName"], alarm["Namespace"]) == ("SchemaDrift", {"Ref": "MetricsNamespace"})
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 0)
    metric = (REPO / "patcher" / "aws" / "drift_metric.py").read_text()
    assert 'METRIC = "SchemaDrift"' in metric


def test_checker_rejects_a_broad_managed_policy() -> None:
    template = copy.deepcopy(load_template())
    _, role = _function_role(template)
    assert role is not None
    role["Properties"]["ManagedPolicyArns"].append("arn:aws:iam::aws:policy/AdministratorAccess")
    assert any("AdministratorAccess" in p for p in iam_problems(template))


def test_checker_rejects_sam_policy_templates() -> None:
    template = copy.deepcopy(load_template())
    props = template["Resources"][FUNCTION]["Properties"]
    props["Policies"] = [{"S3ReadPolicy": {"BucketName": {"Ref": "MigrationsBucket"}}}]
    assert iam_problems(template) != []


# --- wiring --------------------------------------------------------------------------------


def test_function_configuration() -> None:
    template = load_template()
    props = template["Resources"][FUNCTION]["Properties"]
    assert template["Resources"][FUNCTION]["Type"] == "AWS::Serverless::Function"
    assert props["Handler"] == "patcher.handler.lambda_handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 900
    # X-Ray: a parameter, Active by default; PassThrough also tells the handler (through
    # POWERTOOLS_TRACE_DISABLED) not to import the X-Ray SDK at all.
    assert props["Tracing"] == {"Ref": "Tracing"}
    assert template["Parameters"]["Tracing"]["Default"] == "Active"
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {
        "Fn::If": ["TracingActive", "false", "true"]
    }
    assert props["AutoPublishAlias"] == "live"
    assert props["FunctionName"] == {"Ref": "FunctionName"}
    assert template["Parameters"]["FunctionName"]["Default"] == "StackFlowPatcher"
    env = props["Environment"]["Variables"]
    assert env["PATCHER_SOURCE"] == {"Fn::Sub": "s3://${MigrationsBucket}/${MigrationsPrefix}"}
    assert env["PATCHER_DB_SECRET_ARN"] == {"Ref": "DatabaseSecretArn"}
    assert "PATCHER_DATABASE_URL" not in env  # exactly one database setting
    assert {"PATCHER_EXPECTED_BUCKET_OWNER", "PATCHER_LOCK_WAIT_SECONDS"} <= set(env)
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= set(env)


def test_log_group_is_the_functions_own() -> None:
    template = load_template()
    props = template["Resources"][FUNCTION]["Properties"]
    group = props["LoggingConfig"]["LogGroup"]["Ref"]
    group_props = template["Resources"][group]["Properties"]
    assert group_props["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert group_props["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_name_the_alias() -> None:
    outputs = load_template()["Outputs"]
    # SAM names the alias <FunctionLogicalId>Alias<AliasName>.
    assert outputs["AliasArn"]["Value"] == {"Ref": f"{FUNCTION}Aliaslive"}
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert outputs["FunctionName"]["Value"] == {"Ref": FUNCTION}


# --- the state machine and the long-run task ----------------------------------------------

# The only actions that may name Resource "*", each because IAM accepts nothing narrower.
STAR_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}  # fmt: skip
ORCHESTRATION_ROLES = {
    "StateMachineRole": "states.amazonaws.com",
    "LongRunExecutionRole": "ecs-tasks.amazonaws.com",
    "LongRunTaskRole": "ecs-tasks.amazonaws.com",
    "FleetSummaryRole": "lambda.amazonaws.com",
    "DriftScheduleRole": "events.amazonaws.com",
}


def orchestration_problems(template: dict[str, Any], text: str) -> list[str]:
    """Why the state machine's or the task's roles grant more than they need."""
    resources = template["Resources"]
    problems = []
    for name, service in ORCHESTRATION_ROLES.items():
        props = resources[name]["Properties"]
        if props.get("ManagedPolicyArns"):
            problems.append(f"{name}: no managed policies")
        principals = [s.get("Principal") for s, _ in _statements(
            props["AssumeRolePolicyDocument"]["Statement"])]  # fmt: skip
        if principals != [{"Service": service}]:
            problems.append(f"{name}: only {service} may assume it")
        for policy in props.get("Policies", []):
            for statement, conditional in _statements(policy["PolicyDocument"]["Statement"]):
                where = f"{name}[{statement.get('Sid')}]"
                actions = _as_list(statement.get("Action"))
                if any("*" in a for a in actions) or "NotAction" in statement:
                    problems.append(f"{where}: wildcard or NotAction")
                if "*" in _as_list(statement.get("Resource")):
                    if not set(actions) <= STAR_ACTIONS:
                        problems.append(f"{where}: Resource * for {actions}")
                    if not _commented(text, str(statement.get("Sid"))):
                        problems.append(f"{where}: a Resource * needs a comment saying why")
                if name == "LongRunTaskRole":
                    log_groups = {"StackFlowPatcherLogGroup"}
                    problems += _statement_problems(where, statement, conditional, log_groups)
    return problems


def _commented(text: str, sid: str) -> bool:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == f"- Sid: {sid}":
            return lines[index - 1].strip().startswith("#")
    return False


def test_orchestration_roles_are_least_privilege() -> None:
    assert orchestration_problems(load_template(), TEMPLATE.read_text()) == []


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("StateMachineRole", {"Effect": "Allow", "Action": "lambda:InvokeFunction",
                              "Resource": "*"}),
        ("StateMachineRole", {"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:x"}),
        ("LongRunTaskRole", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                             "Resource": "*"}),
        ("LongRunTaskRole", {"Effect": "Allow", "Action": "s3:PutObject",
                             "Resource": {"Fn::Sub": OBJECTS_ARN}}),
        ("LongRunExecutionRole", {"Effect": "Allow", "Action": "ecr:BatchGetImage",
                                  "Resource": "*"}),
    ],
)  # fmt: skip
def test_orchestration_checker_rejects_an_injected_statement(
    role: str, statement: dict[str, Any]
) -> None:
    template = copy.deepcopy(load_template())
    policy = template["Resources"][role]["Properties"]["Policies"][0]
    policy["PolicyDocument"]["Statement"].append(statement)
    assert orchestration_problems(template, TEMPLATE.read_text()) != []


def test_the_state_machine_runs_the_definition_file_with_every_substitution() -> None:
    template = load_template()
    machine = template["Resources"]["Orchestrator"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    props = machine["Properties"]
    assert (props["Type"], props["DefinitionUri"]) == ("STANDARD", "statemachine/patcher.asl.json")
    assert props["Role"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
    used = set(re.findall(r"\$\{(\w+)\}", (REPO / props["DefinitionUri"]).read_text()))
    assert used == set(props["DefinitionSubstitutions"])
    assert props["DefinitionSubstitutions"]["FunctionArn"] == {"Ref": f"{FUNCTION}Aliaslive"}


def test_the_task_has_the_functions_configuration() -> None:
    template = load_template()
    function_env = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    (container,) = template["Resources"]["LongRunTaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ]
    task_env = {e["Name"]: e["Value"] for e in container["Environment"]}
    patcher = {k: v for k, v in function_env.items() if k.startswith("PATCHER_")}
    assert task_env == patcher
    assert container["Name"] == "patcher"  # the name the definition's override uses


def test_targets_become_the_json_object_the_config_reads() -> None:
    """Evaluate the template's Join/Split on a sample Targets list, then load_config it."""
    import json

    from patcher.app.config import load_config

    env = load_template()["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    _, expression, _ = env["PATCHER_TARGETS"]["Fn::If"]
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-{}-AbCdEf"
    pairs = [f"blue={arn.format('blue')}", f"green={arn.format('green')}"]
    value = _evaluate(expression, {"Targets": pairs})
    assert json.loads(value) == {"blue": arn.format("blue"), "green": arn.format("green")}
    config = load_config({"PATCHER_TARGETS": value})
    assert dict(config.targets)["green"] == arn.format("green")


def _evaluate(node: Any, params: dict[str, Any]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return params[value]
        if key == "Fn::Join":
            return value[0].join(_evaluate(value[1], params))
        if key == "Fn::Split":
            return _evaluate(value[1], params).split(value[0])
    if isinstance(node, list):
        return [_evaluate(item, params) for item in node]
    return node


def _grants(role: dict[str, Any]) -> set[tuple[tuple[str, ...], str | None]]:
    statements = [s for p in role["Properties"]["Policies"] for s, _ in _statements(
        p["PolicyDocument"]["Statement"])]  # fmt: skip
    return {(tuple(_as_list(s["Action"])), _text(s["Resource"])) for s in statements}


RESULTS_ARN = "arn:${AWS::Partition}:s3:::${ResultsBucket}/${ResultsPrefix}*"
EXECUTIONS_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
    "${FunctionName}-orchestrator:*"
)


def test_the_fleet_summary_only_reads_the_results_prefix() -> None:
    """The second function: same package, its own handler, outside the VPC, read-only (the
    results, the orchestrator's map runs)."""
    resources = load_template()["Resources"]
    props = resources["FleetSummary"]["Properties"]
    assert props["Handler"] == "patcher.aws.fleet_summary.handler"
    assert props["CodeUri"] == resources[FUNCTION]["Properties"]["CodeUri"]
    assert props["Role"] == {"Fn::GetAtt": ["FleetSummaryRole", "Arn"]}
    assert "VpcConfig" not in props and "Policies" not in props
    role = resources["FleetSummaryRole"]
    assert not role["Properties"].get("ManagedPolicyArns")
    logs = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    assert _grants(role) == {
        (("s3:ListBucket",), "arn:${AWS::Partition}:s3:::${ResultsBucket}"),
        (("s3:GetObject",), RESULTS_ARN),
        (("states:ListMapRuns",), EXECUTIONS_ARN),  # to locate a failed map's manifest
        (("logs:CreateLogStream", "logs:PutLogEvents"), logs + "${FleetSummaryLogGroup}:*"),
    }
    (listing,) = [s for p in role["Properties"]["Policies"] for s, _ in _statements(
        p["PolicyDocument"]["Statement"]) if s["Action"] == "s3:ListBucket"]  # fmt: skip
    assert _text(listing["Condition"]["StringLike"]["s3:prefix"]) == "${ResultsPrefix}*"


def test_the_state_machine_invokes_the_two_aliases_and_writes_only_results() -> None:
    resources = load_template()["Resources"]
    grants = _grants(resources["StateMachineRole"])
    invoked = {r for actions, r in grants if actions == ("lambda:InvokeFunction",)}
    assert invoked == {"${StackFlowPatcherAliaslive}", "${FleetSummaryAliaslive}"}
    s3 = {(a, r) for a, r in grants if any(x.startswith("s3:") for x in a)}
    assert s3 == {(("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload"), RESULTS_ARN)}  # fmt: skip
    subs = resources["Orchestrator"]["Properties"]["DefinitionSubstitutions"]
    assert subs["SummaryFunctionArn"] == {"Ref": "FleetSummaryAliaslive"}
