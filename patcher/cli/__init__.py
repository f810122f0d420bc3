"""The ``patcher`` command: parser and dispatch, output, and its text and markdown renderers."""
