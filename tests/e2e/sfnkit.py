"""The state machine of template.yaml run by moto's Step Functions interpreter, end to end.

What runs is real: the definition file the template deploys (statemachine/patcher.asl.json,
its ``${...}`` substitutions filled in as CloudFormation would), the interpreter, the function's
code (``patcher.handler.lambda_handler``), the container's command (the Dockerfile's ENTRYPOINT
with the task's command, in a subprocess), moto's S3, Secrets Manager, Lambda, ECS and EC2, and
PostgreSQL. The one stand-in is running code inside AWS: moto's Lambda needs Docker to run a
function, so ``LambdaFunction.invoke`` is hooked to call the handler with a Lambda-like context
(the deadline included), and the summary function's invoke runs
``patcher.aws.fleet_summary.handler``;
the ``ecs:runTask.sync`` integration is hooked to run the container's command in a subprocess
(moto's own passes ``Cluster`` where boto3 wants ``cluster``, and reads ``Tasks`` from a
``tasks`` response, so it cannot run a task at all). moto's Distributed Map lacks ResultWriter's
files and the tolerated failure threshold, names an aws-sdk:s3 error s3.<...> rather than
S3.<...> and cannot write an object Body: tests/fixtures/sfn_distributed_map.py completes them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import types
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from patcher.dev.devrun import LambdaContext
from tests.fixtures.sfn_distributed_map import (
    complete_aws_sdk_blobs,
    complete_aws_sdk_error_names,
    complete_distributed_map,
)

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "statemachine" / "patcher.asl.json"
DOCKERFILE = REPO / "Dockerfile"
REGION = "us-east-1"
RESULTS_PREFIX = "runs/"
WAVES_PREFIX = RESULTS_PREFIX + "waves"  # ResultWriter's literal Prefix
SUMMARY_FUNCTION = "StackFlowPatcherFleetSummary"
MIGRATIONS_PREFIX = "migrations/"


def container_entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT (exec form), with this interpreter for ``python``."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            words: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
            return [sys.executable if w == "python" else w for w in words]
    raise AssertionError("the Dockerfile has no ENTRYPOINT")


@dataclass
class Execution:
    status: str
    output: Any
    error: str | None
    cause: str | None
    name: str

    @property
    def cause_json(self) -> Any:
        return json.loads(self.cause or "null")


@dataclass
class Aws:
    """moto's world for one test: buckets, the function and its alias, the ECS cluster."""

    bucket: str
    results_bucket: str
    alias_arn: str
    summary_arn: str
    cluster_arn: str
    task_definition_arn: str
    subnet: str
    security_group: str
    role_arn: str
    endpoint: str  # the moto server the container's subprocess talks to
    invocations: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)  # the summary function's
    summary_events: list[dict[str, Any]] = field(default_factory=list)  # what it was given
    tasks: list[list[str]] = field(default_factory=list)
    context: Callable[[], LambdaContext] = LambdaContext
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, name: str, text: str) -> None:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=self.bucket, Key=MIGRATIONS_PREFIX + name, Body=text.encode()
        )

    def create_secret(self, name: str, dsn: str) -> str:
        client = boto3.client("secretsmanager", region_name=REGION)
        arn: str = client.create_secret(Name=name, SecretString=secret_of(dsn))["ARN"]
        return arn

    def state_machine(self, targets: dict[str, str] | None = None) -> StateMachine:
        """Create the state machine from the definition file, substituted as the template does."""
        pairs = ",".join(f"{n}={a}" for n, a in (targets or {}).items())
        substitutions = {
            "FunctionArn": self.alias_arn,
            "SummaryFunctionArn": self.summary_arn,
            "ClusterArn": self.cluster_arn,
            "TaskDefinitionArn": self.task_definition_arn,
            "SubnetIds": self.subnet,
            "SecurityGroupIds": self.security_group,
            "ResultsBucket": self.results_bucket,
            "ResultsPrefix": RESULTS_PREFIX,
            "Targets": pairs,
        }
        text = DEFINITION.read_text()
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", value)
        assert "${" not in text, "a substitution the template does not fill"
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name=f"patcher-{uuid.uuid4().hex[:8]}", definition=text, roleArn=self.role_arn
        )["stateMachineArn"]
        return StateMachine(self, arn)

    def wave_manifest(self, execution: str, phase: str) -> str:
        """The key of the manifest.json the summary of that wave of that execution read (its
        ``results``), checked to be under ResultWriter's literal prefix and a map run id."""
        (summary,) = [
            out["summary"]
            for given, out in zip(self.summary_events, self.summaries, strict=True)
            if given["execution"].endswith(f":{execution}") and given["phase"] == phase
        ]
        bucket_url = f"s3://{self.results_bucket}/"
        assert summary["results"].startswith(bucket_url + WAVES_PREFIX + "/"), summary["results"]
        key: str = summary["results"].removeprefix(bucket_url)
        run_id = key.removeprefix(WAVES_PREFIX + "/").removesuffix("/manifest.json")
        assert run_id and "/" not in run_id, key  # <prefix>/<map run id>/manifest.json
        return key

    def wave_records(self, execution: str, phase: str) -> dict[str, dict[str, Any]]:
        """What the wave's ResultWriter wrote: {database: child execution record}, read through
        the manifest.json its summary read (Input and Output parsed)."""
        s3 = boto3.client("s3", region_name=REGION)
        manifest = self.wave_manifest(execution, phase)
        body = json.loads(s3.get_object(Bucket=self.results_bucket, Key=manifest)["Body"].read())
        found = {}
        for files in body["ResultFiles"].values():
            for f in files:
                text = s3.get_object(Bucket=self.results_bucket, Key=f["Key"])["Body"].read()
                for record in json.loads(text):
                    record["Input"] = json.loads(record["Input"])
                    record["Output"] = json.loads(record.get("Output") or "null")
                    found[record["Input"]["database"] or "default"] = record
        return found

    def failed_result(self, execution: str, database: str | None) -> Any:
        """The whole record a failed item stored before its child failed (WriteFailed):
        ``<ResultsPrefix><execution>/failed/<database or default>.json``, parsed."""
        s3 = boto3.client("s3", region_name=REGION)
        key = f"{RESULTS_PREFIX}{execution}/failed/{database or 'default'}.json"
        return json.loads(s3.get_object(Bucket=self.results_bucket, Key=key)["Body"].read())


def refuse_failed_puts(monkeypatch: Any, times: int | None) -> list[str]:
    """moto's S3 throttles the first ``times`` PUTs (every one: None) of a key under a
    ``/failed/`` prefix (SlowDown: the aws-sdk integration's S3.S3Exception); returns the
    refused keys."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.put_object
    refused: list[str] = []

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kw: Any) -> Any:
        if "/failed/" in key_name and (times is None or len(refused) < times):
            refused.append(key_name)
            raise S3ClientError("SlowDown", "Please reduce your request rate.")
        return original(self, bucket_name, key_name, *args, **kw)

    monkeypatch.setattr(S3Backend, "put_object", put_object)
    return refused


@dataclass
class StateMachine:
    aws: Aws
    arn: str

    def run(self, payload: dict[str, Any], timeout: float = 180) -> Execution:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        name = f"run-{uuid.uuid4().hex[:12]}"  # moto needs a name per execution
        arn = sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))[
            "executionArn"
        ]
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, f"execution still running after {timeout} s"
            time.sleep(0.05)
        output = described.get("output")
        return Execution(
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            name=name,
        )


def hook_lambda(aws: Aws) -> Callable[..., bytes]:
    """What moto's LambdaFunction.invoke does instead of starting a container: the patcher
    function runs ``lambda_handler``, the summary function ``fleet_summary.handler``."""

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        from patcher.aws.fleet_summary import handler as summary_handler
        from patcher.aws.handler import lambda_handler

        payload = json.loads(body)
        if self.function_name == SUMMARY_FUNCTION:
            summary = summary_handler(payload, aws.context())
            with aws.lock:
                aws.summary_events.append(payload)
                aws.summaries.append(summary)
            return json.dumps(summary).encode()
        with aws.lock:
            aws.invocations.append(payload)
        context = aws.context()
        header = request_headers.get("x-amz-client-context") if request_headers else None
        if header:  # what the Lambda runtime makes of the invoke's ClientContext
            custom = json.loads(base64.b64decode(header)).get("custom")
            context.client_context = types.SimpleNamespace(custom=custom)
        result = lambda_handler(payload, context)
        with aws.lock:
            aws.results.append(result)
        return json.dumps(result).encode()

    return invoke


def run_container(aws: Aws, params: dict[str, Any]) -> dict[str, Any]:
    """What Fargate does for ``ecs:runTask``: check the request against moto's cluster, task
    definition and subnets, run the container's command (ENTRYPOINT + the override) with the
    function's environment in a subprocess, and describe the stopped task as Step Functions
    returns it."""
    ecs = boto3.client("ecs", region_name=REGION)
    (cluster,) = ecs.describe_clusters(clusters=[params["Cluster"]])["clusters"]
    task_def = ecs.describe_task_definition(taskDefinition=params["TaskDefinition"])
    names = {c["name"] for c in task_def["taskDefinition"]["containerDefinitions"]}
    (override,) = params["Overrides"]["ContainerOverrides"]
    assert override["Name"] in names and params["LaunchType"] == "FARGATE"
    network = params["NetworkConfiguration"]["AwsvpcConfiguration"]
    ec2 = boto3.client("ec2", region_name=REGION)
    assert ec2.describe_subnets(SubnetIds=network["Subnets"])["Subnets"]
    command = [*container_entrypoint(), *override["Command"]]
    with aws.lock:
        aws.tasks.append(list(override["Command"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["AWS_ENDPOINT_URL"] = aws.endpoint  # the container reaches AWS: here, moto's server
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    print(f"container: {shlex.join(command)} -> {done.returncode}\n{done.stdout[-3000:]}")
    print(done.stderr[-3000:], file=sys.stderr)
    return {
        "ClusterArn": cluster["clusterArn"],
        "TaskArn": f"{cluster['clusterArn'].replace(':cluster/', ':task/')}/{uuid.uuid4().hex}",
        "TaskDefinitionArn": task_def["taskDefinition"]["taskDefinitionArn"],
        "LastStatus": "STOPPED",
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": override["Name"], "ExitCode": done.returncode}],
    }


def hook_ecs(aws: Aws) -> tuple[Callable[..., None], Callable[..., Callable[[], Any]]]:
    """Replacements for moto's ecs:runTask.sync integration (its request and response keys do
    not reach boto3 as they must): submit runs the container, the sync resolver returns the
    stopped task."""

    def submit(self: Any, env: Any, normalised_parameters: dict[str, Any], **_: Any) -> None:
        env.stack.append({"Tasks": [run_container(aws, normalised_parameters)]})

    def resolver(self: Any, env: Any, **_: Any) -> Callable[[], Any]:
        submitted = env.stack.pop()
        return lambda: submitted["Tasks"][0]

    return submit, resolver


def make_world(endpoint: str) -> Aws:
    """Buckets, role, function with its live alias, VPC, ECS cluster and task definition."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="patcher", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s3 = boto3.client("s3", region_name=REGION)
    bucket, results = f"mig-{uuid.uuid4().hex[:8]}", f"res-{uuid.uuid4().hex[:8]}"
    for name in (bucket, results):
        s3.create_bucket(Bucket=name)
    lam = boto3.client("lambda", region_name=REGION)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "# the hook runs patcher.handler instead\n")
    lam.create_function(
        FunctionName="StackFlowPatcher", Runtime="python3.12", Role=role,
        Handler="patcher.handler.lambda_handler", Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    version = lam.publish_version(FunctionName="StackFlowPatcher")["Version"]
    alias = lam.create_alias(FunctionName="StackFlowPatcher", Name="live", FunctionVersion=version)
    summary = lam.create_function(
        FunctionName=SUMMARY_FUNCTION, Runtime="python3.12", Role=role,
        Handler="patcher.aws.fleet_summary.handler", Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]  # fmt: skip
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="patcher", Description="x", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName="patcher")["cluster"]["clusterArn"]
    task_def = ecs.register_task_definition(
        family="stackflow-patcher-long-run", networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"], cpu="512", memory="1024",
        containerDefinitions=[{"name": "patcher", "image": "patcher:test", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    return Aws(
        bucket=bucket, results_bucket=results, alias_arn=alias["AliasArn"], summary_arn=summary,
        cluster_arn=cluster, task_definition_arn=task_def, subnet=subnet,
        security_group=group, role_arn=role, endpoint=endpoint,
    )  # fmt: skip


def sfn_world(monkeypatch: Any, endpoint: str) -> Iterator[Aws]:
    """moto with the Step Functions interpreter on, the world made, the two hooks in place;
    the environment is the function's (PATCHER_SOURCE on the migrations bucket)."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_service,
    )

    for name in list(os.environ):
        if name.startswith(("PATCHER_", "POWERTOOLS_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        aws = make_world(endpoint)
        monkeypatch.setattr(LambdaFunction, "invoke", hook_lambda(aws))
        complete_distributed_map(monkeypatch)
        complete_aws_sdk_error_names(monkeypatch)
        complete_aws_sdk_blobs(monkeypatch)
        submit, resolver = hook_ecs(aws)
        monkeypatch.setattr(ecs_service.StateTaskServiceEcs, "_eval_service_task", submit)
        monkeypatch.setattr(ecs_service.StateTaskServiceEcs, "_build_sync_resolver", resolver)
        monkeypatch.setenv("PATCHER_SOURCE", f"s3://{aws.bucket}/{MIGRATIONS_PREFIX}")
        monkeypatch.setenv("PATCHER_LOCK_WAIT_SECONDS", "1")
        yield aws


def secret_of(dsn: str) -> str:
    """The Secrets Manager value (RDS's JSON shape) the handler reads for ``dsn``'s database."""
    from urllib.parse import urlsplit

    url = urlsplit(dsn)
    secret = {
        "engine": "postgres", "host": url.hostname, "port": url.port,
        "username": url.username, "password": "unused", "dbname": url.path.strip("/"),
    }  # fmt: skip
    return json.dumps(secret)
