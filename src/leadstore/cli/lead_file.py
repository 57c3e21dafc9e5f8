"""Reading a file of leads for ``leadstore bulk-update``: CSV with a header of schema names, or
JSON Lines with one object a line. Rows stream; nothing holds the whole file.

Each row comes with the problems found in it (unknown column, bad encoding, missing search
key, malformed line), each naming the row and column, so a bad file can be refused whole
before anything is sent.
"""

import codecs
import csv
import difflib
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leadstore.client import FieldMetadata

Format = Literal["csv", "jsonl"]
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}

# A CSV cell may hold a long Notes text; the csv module's default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Row:
    number: int
    """1-based data row: the header and blank lines do not count."""
    line: int
    """The file line the row starts on."""
    fields: dict[str, str | None] = field(default_factory=dict)
    identifier: str = ""
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str, column: str | None = None) -> None:
        where = f"row {self.number} (line {self.line})" + (f", column {column}" if column else "")
        self.problems.append(f"{where}: {message}")


class LeadFile:
    """``rows()`` yields every data row; ``header_problems`` lists what is wrong with the file
    as a whole (filled while reading)."""

    def __init__(self, path: Path, fields: list[FieldMetadata], search_key: FieldMetadata) -> None:
        self.path = path
        self.format = detect_format(path)
        self.fields = {f.schema_name.lower(): f for f in fields}
        self.search_key = search_key
        self.header_problems: list[str] = []

    def rows(self) -> Iterator[Row]:
        self.header_problems = []
        return self._csv_rows() if self.format == "csv" else self._jsonl_rows()

    def _field(self, name: str) -> FieldMetadata | None:
        return self.fields.get(name.strip().lower())

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), list(self.fields), n=1)
        hint = f"; did you mean {self.fields[close[0]].schema_name}?" if close else ""
        return f"no lead field is named {name!r} (or you may not read it){hint}"

    def _lines(self, bad: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad.append(
                        (number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)")
                    )
                    yield number, raw.decode("utf-8", errors="replace")

    def _csv_rows(self) -> Iterator[Row]:
        bad: list[tuple[int, str]] = []
        lines = self._lines(bad)
        current = [0]

        def text() -> Iterator[str]:
            for number, line in lines:
                current[0] = number
                yield line

        reader = csv.reader(text())
        header = next(reader, None)
        if header is None:
            self.header_problems.append("the file is empty; the first line must name the columns")
            return
        columns = self._check_header(header, bad)
        count, start = 0, current[0] + 1
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    start = current[0] + 1
                    bad.clear()
                    continue
                count += 1
                row = Row(count, start)
                for number, message in bad:
                    where = "" if number == row.line else f"its line {number} is "
                    row.problem(f"{where}{message}; save the file as UTF-8")
                bad.clear()
                self._csv_row(row, columns, cells)
                start = current[0] + 1
                yield row
        except csv.Error as exc:
            self.header_problems.append(f"line {current[0]}: the CSV cannot be read further ({exc})")

    def _check_header(self, header: list[str], bad: list[tuple[int, str]]) -> list[str | None]:
        for number, message in bad:
            self.header_problems.append(f"header (line {number}): {message}; save the file as UTF-8")
        bad.clear()
        columns: list[str | None] = []
        seen: dict[str, int] = {}
        for position, name in enumerate(header, 1):
            name = name.strip()
            where = f"header, column {position}"
            field_ = self._field(name) if name else None
            if not name:
                columns.append("")  # allowed while the column stays empty
                continue
            if field_ is None:
                self.header_problems.append(f"{where} ({name}): {self._unknown(name)}")
            elif field_.schema_name in seen:
                self.header_problems.append(
                    f"{where} ({name}): the same field as column {seen[field_.schema_name]}; keep one of them"
                )
            else:
                seen[field_.schema_name] = position
            columns.append(field_.schema_name if field_ else None)
        if self.search_key.schema_name not in seen:
            self.header_problems.append(
                f"header: no {self.search_key.schema_name} column; every row needs the --search-by field"
            )
        return columns

    def _csv_row(self, row: Row, columns: list[str | None], cells: list[str]) -> None:
        for position, cell in enumerate(cells, 1):
            if not cell.strip():
                continue  # empty cells are left out, not sent as empty values
            if position > len(columns):
                row.problem(f"a value beyond the {len(columns)} columns of the header", f"{position}")
                continue
            name = columns[position - 1]
            if name == "":
                row.problem("a value in a column with no name in the header", f"{position}")
            elif name is not None:  # None: an unknown column, reported once for the header
                row.fields[name] = cell
        self._check_key(row)

    def _jsonl_rows(self) -> Iterator[Row]:
        bad: list[tuple[int, str]] = []
        count = 0
        for number, line in self._lines(bad):
            if not line.strip():
                bad.clear()
                continue
            count += 1
            row = Row(count, number)
            if bad:
                row.problem(f"{bad[0][1]}; save the file as UTF-8")
                bad.clear()
                yield row
                continue
            try:
                data = json.loads(line, object_pairs_hook=_no_repeats)
            except _RepeatedKey as exc:
                row.problem(f"{exc.args[0]!r} appears more than once in the object")
            except json.JSONDecodeError as exc:
                row.problem(f"not valid JSON ({exc.msg} at character {exc.colno}); write one object a line")
            else:
                if isinstance(data, dict):
                    self._jsonl_row(row, data)
                else:
                    row.problem('a line must be a JSON object such as {"EmailAddress": "a@example.com"}')
            yield row

    def _jsonl_row(self, row: Row, data: Mapping[str, Any]) -> None:
        for name, value in data.items():
            field_ = self._field(name)
            if field_ is None:
                row.problem(self._unknown(name), name)
                continue
            if isinstance(value, bool):
                row.fields[field_.schema_name] = "true" if value else "false"
            elif value is None or isinstance(value, str):
                row.fields[field_.schema_name] = value
            elif isinstance(value, int | float):
                row.fields[field_.schema_name] = json.dumps(value)
            else:
                row.problem("a value must be a string, number, true, false or null", name)
        self._check_key(row)

    def _check_key(self, row: Row) -> None:
        name = self.search_key.schema_name
        value = row.fields.get(name)
        if value is None or not value.strip():
            row.problem("missing; every row needs a value to find its lead by", name)
        else:
            row.identifier = value


class _RepeatedKey(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _RepeatedKey(key)
        data[key] = value
    return data


def detect_format(path: Path) -> Format:
    """By the file name, else by the first character: ``{`` means JSON Lines."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    with path.open("rb") as f:
        start = f.read(4096).lstrip(codecs.BOM_UTF8).lstrip()
    return "jsonl" if start.startswith(b"{") else "csv"


_NOT_DIGITS = re.compile(r"\D")


def lead_key(field_: FieldMetadata, value: str) -> int:
    """A compact stand-in for the lead a search-key value finds, to spot the same lead twice in
    a file. It follows the service's normalising where that is plain (trimmed; emails and
    ProspectIds ignore case; phones ignore spaces and dashes)."""
    value = value.strip()
    if field_.data_type == "Email" or field_.schema_name.lower() == "prospectid":
        value = value.casefold()
    elif field_.data_type == "Phone":
        value = ("+" if value.startswith("+") else "") + _NOT_DIGITS.sub("", value)
    return hash(value)
