"""Errors raised on bad input data: they say which file, row and field, and what was expected."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads like ``items.csv row 12, field 'item_id': expected an integer, got 'x'``.

    ``row`` is the 1-based data row (the header is row 0), as a user counts rows in a spreadsheet
    below the header; ``None`` when the problem is the whole file (missing, unreadable, no header).
    """

    def __init__(self, file: str | Path, message: str, row: int | None = None, field: str | None = None,
                 expected: str | None = None, got: object = None) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.expected = expected
        self.got = got
        where = self.file
        if row is not None:
            where += f" row {row}"
        if field is not None:
            where += f", field '{field}'"
        detail = message
        if expected is not None:
            detail += f": expected {expected}"
            if got is not None:
                detail += f", got {got!r}"
        super().__init__(f"{where}: {detail}")
