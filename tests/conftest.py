"""Shared by every test: the fixture plugins, registered once (see tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.engine",
    "pytester",  # tests/test_postgres_fixtures.py runs the postgres plugin in a subprocess
]
