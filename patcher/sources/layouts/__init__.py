"""Other tools' directory layouts (SPEC 2a): file names and one-file sections to migrations.

``names`` parses a file name per layout and tells which layout a name belongs to;
``patcher.sql.sections`` cuts the up or down part out of a dbmate or goose file;
``patcher.sources.layout_source`` wraps any migration source so that what it lists carries its
layout (``PATCHER_LAYOUT``, detected when ``auto``).
"""

from __future__ import annotations

from typing import Literal

Layout = Literal["golang-migrate", "sqlx", "flyway", "dbmate", "goose"]
LAYOUTS: tuple[str, ...] = ("auto", "golang-migrate", "sqlx", "flyway", "dbmate", "goose")
ONE_FILE = frozenset({"dbmate", "goose"})
