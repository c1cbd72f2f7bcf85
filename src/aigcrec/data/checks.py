"""Strict readers and column checks shared by the loaders.

Every check raises :class:`~aigcrec.data.errors.DataError` on the *first* bad value, naming the file,
the 1-based data row (the header is row 0) and the field, with what was expected and what was found.
CSV files are read as strings by pyarrow (fast, and strict: a row with too few or too many fields is an
error, where pandas would pad it); the row to report is then found with :mod:`csv`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Collection, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from aigcrec.data.errors import DataError

_INT = re.compile(r"[+-]?\d{1,18}")  # fits int64


def require_dir(root: str | Path) -> Path:
    """``root`` as a resolved :class:`Path`; a missing folder is a :class:`DataError`."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(path, "dataset folder not found", expected="an existing directory")
    return path.resolve()


def require_file(path: Path, what: str = "a file") -> Path:
    if not path.is_file():
        raise DataError(path, "file not found", expected=what)
    return path


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path`` (a UTF-8 BOM dropped); bytes that are not UTF-8 are reported with their row."""
    data = require_file(path).read_bytes()
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)  # newlines before the bad byte = 0-based line = data row
        raise DataError(path, "not valid UTF-8", row=line if line > 0 else None,
                        expected="UTF-8 text", got=data[exc.start:exc.end]) from None
    return data


def read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file as strings (empty cells stay ``""``), checking the header and each row's field count.

    Returns every column of the file in file order, indexed 0..n-1 (data row ``i + 1``). Parsing is done
    by pyarrow; when it rejects the file, :mod:`csv` re-reads it to find the row to report.
    """

    data = read_bytes(path)
    text = data.decode("utf-8")
    header = [h.strip() for h in next(csv.reader(io.StringIO(text, newline="")), [])]
    if not any(header):
        raise DataError(path, "empty file", expected=f"a header row with columns {list(required)}")
    for col in required:
        if col not in header:
            raise DataError(path, "missing column", field=col, expected=f"columns {list(required)}",
                            got=header)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(path, "duplicate column name", field=dupes[0], expected="unique column names",
                        got=header)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        _raise_bad_row(path, text, len(header))
        raise DataError(path, f"malformed CSV ({exc})") from None
    return table.to_pandas()


def _raise_bad_row(path: Path, text: str, n_fields: int) -> None:
    """Find the first data row whose field count differs from the header's and raise for it."""
    rows = csv.reader(io.StringIO(text, newline=""))
    next(rows)
    try:
        row_no = 0
        for row in rows:
            if not row:  # blank lines are skipped, as the fast reader does
                continue
            row_no += 1
            if len(row) != n_fields:
                raise DataError(path, "wrong number of fields", row=row_no,
                                expected=f"{n_fields} fields like the header", got=len(row))
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV ({exc})", row=row_no + 1) from None


def first_row(mask: pd.Series | np.ndarray) -> int | None:
    """The 1-based data row of the first ``True`` in ``mask``, or ``None``."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) + 1 if len(hits) else None


def int_column(frame: pd.DataFrame, col: str, path: Path, *, required: bool = True,
               lo: int | None = None, hi: int | None = None) -> pd.Series:
    """Parse ``frame[col]`` as integers (nullable ``Int64``; empty cells are ``<NA>`` unless ``required``)."""
    values = frame[col].str.strip()
    empty = values.eq("")
    if required and empty.any():
        raise DataError(path, "missing value", row=first_row(empty), field=col, expected="an integer", got="")
    bad = ~empty & ~values.str.fullmatch(_INT.pattern).astype(bool)
    if bad.any():
        row = first_row(bad)
        raise DataError(path, "not an integer", row=row, field=col, expected="an integer (at most 18 digits)",
                        got=values.iloc[row - 1])
    out = values.mask(empty).astype("Int64")
    outside = pd.Series(False, index=frame.index)
    if lo is not None:
        outside |= (out < lo).fillna(False)
    if hi is not None:
        outside |= (out > hi).fillna(False)
    if outside.any():
        row = first_row(outside)
        span = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise DataError(path, "out of range", row=row, field=col, expected=f"an integer in {span}",
                        got=values.iloc[row - 1])
    return out


def number_column(frame: pd.DataFrame, col: str, path: Path, *, required: bool = True,
                  lo: float | None = None, hi: float | None = None) -> pd.Series:
    """Parse ``frame[col]`` as finite numbers (float64; empty cells are NaN unless ``required``)."""
    values = frame[col].str.strip()
    empty = values.eq("")
    if required and empty.any():
        raise DataError(path, "missing value", row=first_row(empty), field=col, expected="a number", got="")
    out = pd.to_numeric(values.mask(empty), errors="coerce").astype("float64")
    bad = ~empty & ~np.isfinite(out.to_numpy())
    if bad.any():
        row = first_row(bad)
        raise DataError(path, "not a number", row=row, field=col, expected="a finite number",
                        got=values.iloc[row - 1])
    outside = ((out < lo) if lo is not None else False) | ((out > hi) if hi is not None else False)
    if np.any(outside):
        row = first_row(outside)
        raise DataError(path, "out of range", row=row, field=col,
                        expected=f"a number in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}",
                        got=values.iloc[row - 1])
    return out


def id_column(frame: pd.DataFrame, col: str, path: Path) -> pd.Series:
    """Integer ids as canonical strings (``"007"`` -> ``"7"``), so files agree however they pad ids."""
    return int_column(frame, col, path).astype("int64").astype(str)


def check_in(values: pd.Series, allowed: Collection[str], path: Path, field: str, *,
             allow_empty: bool = False) -> None:
    """Every value is in ``allowed`` (or empty when ``allow_empty``)."""
    ok = values.isin(list(allowed))
    if allow_empty:
        ok |= values.eq("")
    if not ok.all():
        row = first_row(~ok)
        expected = f"one of {sorted(allowed)}" if len(allowed) <= 20 else f"one of {len(allowed)} labels"
        raise DataError(path, "unknown label", row=row, field=field, expected=expected,
                        got=values.iloc[row - 1])


def check_unique(values: pd.Series, path: Path, field: str) -> None:
    """No value appears twice; the error names the second occurrence and the first one's row."""
    dup = values.duplicated()
    if dup.any():
        row = first_row(dup)
        value = values.iloc[row - 1]
        first = first_row(values.eq(value))
        raise DataError(path, f"duplicate id (first seen in row {first})", row=row, field=field,
                        expected="unique ids", got=value)


def genre_lists(raw: pd.DataFrame, path: Path, col: str = "genres") -> pd.Series:
    """``'|'``-separated names as lists (empty cell -> ``[]``); an empty name between separators is an error."""
    genres = raw[col].str.strip().map(lambda g: [t.strip() for t in g.split("|")] if g else [])
    empty = genres.map(lambda gs: any(not t for t in gs))
    if empty.any():
        row = first_row(empty)
        raise DataError(path, "empty genre name", row=row, field=col,
                        expected="genre names separated by '|'", got=raw[col].iloc[row - 1])
    return genres


def check_nonempty(values: pd.Series, path: Path, field: str) -> None:
    empty = values.str.strip().eq("")
    if empty.any():
        raise DataError(path, "missing value", row=first_row(empty), field=field,
                        expected="a non-empty value", got="")


def relative_file(root: Path, value: str, path: Path, row: int, field: str, *, must_exist: bool) -> str:
    """``root / value`` as an absolute path string; ``value`` must be relative, without ``..`` (and exist)."""
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(path, "path leaves the dataset folder", row=row, field=field,
                        expected="a path relative to the dataset folder", got=value)
    target = root / rel
    if must_exist and not target.is_file():
        raise DataError(path, "file not found", row=row, field=field, expected="an existing file", got=value)
    return str(target)


def value_counts(values: pd.Series | Iterable[str]) -> dict[str, int]:
    """Counts, most frequent first (ties by name), as plain ``{str: int}``."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    counts = series.astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))}
