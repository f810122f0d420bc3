"""``python -m patcher.cli`` (the container's ENTRYPOINT): the ``patcher`` command."""

from patcher.cli.main import entry

entry()
