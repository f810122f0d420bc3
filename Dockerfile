# The long-run path (SPEC section 8): the Lambda package, unchanged, as a container whose
# command is the patcher CLI. Build it after `make package` (build/lambda/ holds the code, its
# arm64 / CPython 3.12 wheels from requirements/lambda.txt and the RDS CA bundle):
#   make package && docker build --platform linux/arm64 -t stackflow-patcher .
# It runs as the state machine's Fargate task: `patcher migrate --target N --json`, with the
# function's PATCHER_* environment (the CA bundle sits at the same /var/task path).
FROM python:3.12.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/var/task

WORKDIR /var/task
COPY build/lambda/ /var/task/

# No root at run time: the CLI needs nothing but the network.
RUN useradd --system --no-create-home --uid 10001 patcher
USER 10001

ENTRYPOINT ["python", "-m", "patcher.cli"]
CMD ["status"]
