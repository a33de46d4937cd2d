"""Reading CSV, XLSX and Parquet files in chunks, with the text encoding detected.

Every source yields :class:`Chunk` tables of at most ``chunk_rows`` rows, so memory stays
bounded whatever the file size: CSV through Arrow's streaming reader (multi-threaded parsing,
one block at a time), XLSX through openpyxl's read-only mode, Parquet batch by batch. CSV and
XLSX columns arrive as strings; typed Parquet columns keep their Arrow types.

The text encoding of a CSV is detected by :mod:`market.pipeline.encoding`.

Arrow's own parse errors quote the offending row, which may be personal data, so they are
never passed on: the file is re-scanned with the csv module to name the row instead.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .encoding import SAMPLE_BYTES, detect_encoding
from .errors import EncodingError, MalformedFile, UnsupportedFormat

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm"}
PARQUET_EXTENSIONS = {".parquet", ".pq"}
_DELIMITERS = (",", "\t", ";", "|")


@dataclass
class Chunk:
    #: Row number of the chunk's first data row, counting the header as row 1.
    first_row: int
    table: pa.Table


@dataclass
class Source:
    """An open input file. ``total`` and :meth:`position` share a unit: bytes for CSV, rows
    otherwise."""

    format: str
    encoding: str | None
    columns: list[str]
    total: int
    warnings: list[str] = field(default_factory=list)

    def chunks(self) -> Iterator[Chunk]:  # pragma: no cover - overridden
        raise NotImplementedError

    def position(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_format(path: str | Path, filename: str) -> str:
    """'csv', 'xlsx' or 'parquet' from the file name, checked against the content.

    Raises UnsupportedFormat (wrong or unknown type) or MalformedFile (empty, truncated).
    """
    ext = Path(filename).suffix.lower()
    with open(path, "rb") as f:
        head = f.read(8)
        size = f.seek(0, io.SEEK_END)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if size == 0:
        raise MalformedFile("the file is empty")
    if ext == ".xls" or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedFormat("legacy .xls workbooks are not supported: save as .xlsx or CSV")
    if ext in CSV_EXTENSIONS:
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PAR1"):
            raise UnsupportedFormat(f"the file is named {ext} but is not text: check its type")
        return "csv"
    if ext in XLSX_EXTENSIONS:
        if not head.startswith(b"PK\x03\x04"):
            raise MalformedFile(f"the file is named {ext} but is not an Excel workbook")
        return "xlsx"
    if ext in PARQUET_EXTENSIONS:
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            raise MalformedFile("the file is not a complete Parquet file")
        return "parquet"
    raise UnsupportedFormat(
        f"unsupported file type {ext or '(no extension)'}: upload CSV, XLSX or Parquet"
    )


def open_source(path: str | Path, filename: str, *, chunk_rows: int) -> Source:
    """Open ``path`` (uploaded as ``filename``). Raises the typed errors of the readers."""
    fmt = detect_format(path, filename)
    if fmt == "csv":
        return CsvSource(Path(path), chunk_rows, tsv=filename.lower().endswith(".tsv"))
    if fmt == "xlsx":
        return XlsxSource(Path(path), chunk_rows)
    return ParquetSource(Path(path), chunk_rows)


# ---------------------------------------------------------------------------- CSV


def _header(text: str, delimiter: str) -> list[str]:
    try:
        row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        raise MalformedFile("the header row cannot be parsed", row=1) from None
    return row


def clean_names(raw: list[str], warn: list[str]) -> list[str]:
    """Trimmed header names; blanks get a placeholder; duplicates raise MalformedFile."""
    names: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(raw, start=1):
        name = name.strip().lstrip("\ufeff").strip()
        if not name:
            name = f"column_{i}"
            warn.append(f"column {i} has no header; it was named {name}")
        if name in seen:
            raise MalformedFile(
                f"column name {name!r} appears twice in the header", row=1, column=name
            )
        seen.add(name)
        names.append(name)
    if not names:
        raise MalformedFile("the file has no header row", row=1)
    return names


class _QuoteCountingFile(io.RawIOBase):
    """The raw file, counting the double quotes that go by.

    A well-formed CSV has an even number of quote characters (escaped quotes come in pairs);
    an odd count means a quoted value never closes, which Arrow silently accepts by reading
    to the end of the file. The byte 0x22 never occurs inside a UTF-8 or GB18030 multi-byte
    character, so the raw bytes can be counted whatever the encoding.
    """

    def __init__(self, path: Path):
        self._f = open(path, "rb")  # noqa: SIM115  (closed by close())
        self.quotes = 0
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        n = self._f.readinto(buffer)
        if n:
            self.quotes += bytes(memoryview(buffer)[:n]).count(b'"')
            self.position += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class CsvSource(Source):
    def __init__(self, path: Path, chunk_rows: int, *, tsv: bool = False):
        reported, codec = detect_encoding(path)
        with open(path, "rb") as f:
            head = f.read(SAMPLE_BYTES)
        text = codecs.getincrementaldecoder(codec)("replace").decode(head, final=False)
        text = text.lstrip("\ufeff")
        first_line = text.split("\n", 1)[0]
        delimiter = "\t" if tsv else max(_DELIMITERS, key=lambda d: (first_line.count(d), d == ","))
        warn: list[str] = []
        names = clean_names(_header(text, delimiter), warn)
        super().__init__("csv", reported, names, path.stat().st_size, warn)
        self._path = path
        self._codec = codec
        self._delimiter = delimiter
        self._chunk_rows = chunk_rows
        longest = max(len(line) for line in head.split(b"\n"))
        # Arrow parses a few dozen blocks ahead of the consumer: small blocks keep that small.
        self._block = int(min(max(1 << 20, 8 * longest), 64 << 20))
        self._file: _QuoteCountingFile | None = None

    def position(self) -> int:
        return self._file.position if self._file is not None else 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def chunks(self) -> Iterator[Chunk]:
        ncols = len(self.columns)
        self._file = _QuoteCountingFile(self._path)
        read = pcsv.ReadOptions(
            encoding="utf8" if self._codec == "utf-8" else self._codec,
            block_size=self._block,
            column_names=self.columns,
            skip_rows=1,
        )
        parse = pcsv.ParseOptions(
            delimiter=self._delimiter,
            newlines_in_values=True,
            invalid_row_handler=lambda row: "error",
        )
        convert = pcsv.ConvertOptions(
            column_types={name: pa.string() for name in self.columns},
            strings_can_be_null=True,
        )
        row = 2
        failed = False
        try:
            reader = pcsv.open_csv(self._file, read, parse, convert)
            buffered: list[pa.RecordBatch] = []
            count = 0
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                buffered.append(batch)
                count += batch.num_rows
                while count >= self._chunk_rows:
                    table = pa.Table.from_batches(buffered)
                    yield Chunk(row, table.slice(0, self._chunk_rows))
                    rest = table.slice(self._chunk_rows)
                    buffered, count = rest.to_batches(), rest.num_rows
                    row += self._chunk_rows
            if self._file.quotes % 2:
                failed = True
            elif count:
                yield Chunk(row, pa.Table.from_batches(buffered, reader.schema))
        except (pa.ArrowException, UnicodeDecodeError):
            # Arrow's message may quote the row, that is personal data: it is dropped here,
            # and the error raised below is not chained to it.
            failed = True
        finally:
            self.close()
        if failed:
            raise self.diagnose(ncols, row)

    def diagnose(self, ncols: int, near_row: int) -> Exception:
        """Find the first bad row with the csv module and say what is wrong with it."""
        decoder = codecs.getincrementaldecoder(self._codec)("strict")

        def lines() -> Iterator[str]:
            with open(self._path, "rb") as f:
                for number, raw in enumerate(f, start=1):
                    try:
                        text: str | None = decoder.decode(raw)
                    except UnicodeDecodeError:
                        text = None  # the exception holds the raw bytes: not kept
                    if text is None:
                        raise EncodingError(
                            f"line {number} is not valid {self.encoding} text", row=number
                        )
                    yield text

        record = 0
        try:
            reader = csv.reader(lines(), delimiter=self._delimiter)
            for fields in reader:
                if not fields or fields == [""]:
                    continue
                record += 1
                if record > 1 and len(fields) != ncols:
                    return MalformedFile(
                        f"row {record} has {len(fields)} fields but the header has {ncols}",
                        row=record,
                    )
        except EncodingError as err:
            return err
        except csv.Error:
            return MalformedFile(
                f"row {record + 1} cannot be parsed: a quoted value is not closed", row=record + 1
            )
        return MalformedFile(f"the file cannot be parsed near row {near_row}", row=near_row)


# ---------------------------------------------------------------------------- XLSX


def cell_text(value: object) -> str | None:
    """Excel cell values as text: integral floats lose their '.0', midnight datetimes are
    dates, everything else is ``str``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


class XlsxSource(Source):
    def __init__(self, path: Path, chunk_rows: int):
        import openpyxl

        warn: list[str] = []
        failure = None
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; they do not matter.
                warnings.simplefilter("ignore")
                self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
            failure = type(exc).__name__
        if failure is not None:
            raise MalformedFile(f"the workbook cannot be read ({failure})")
        try:
            names, total = self._open_sheet(warn)
        except BaseException:
            self.close()
            raise
        super().__init__("xlsx", None, names, total, warn)
        self._chunk_rows = chunk_rows
        self._done = 0

    def _open_sheet(self, warn: list[str]) -> tuple[list[str], int]:
        """Read the header of the first worksheet: (column names, data rows expected)."""
        if not self._book.worksheets:
            raise MalformedFile("the workbook has no worksheet")
        sheet = self._book.worksheets[0]
        if len(self._book.worksheets) > 1:
            warn.append(f"only the first worksheet ({sheet.title}) was read")
        self._rows = sheet.iter_rows(values_only=True)
        self._row = 0
        header: tuple[object, ...] = ()
        for header in self._rows:
            self._row += 1
            if any(v is not None for v in header):
                break
        raw = [cell_text(v) or "" for v in header]
        while raw and not raw[-1]:
            raw.pop()
        return clean_names(raw, warn), max(0, (sheet.max_row or 0) - self._row)

    def position(self) -> int:
        return self._done

    def close(self) -> None:
        # The row generator holds an open zip member, which keeps the file open: close it first.
        rows = getattr(self, "_rows", None)
        if rows is not None:
            rows.close()
        self._book.close()

    def chunks(self) -> Iterator[Chunk]:
        ncols = len(self.columns)
        columns: list[list[str | None]] = [[] for _ in range(ncols)]
        first = self._row + 1
        failure = None
        try:
            for values in self._rows:
                self._row += 1
                if len(values) > ncols and any(v is not None for v in values[ncols:]):
                    raise MalformedFile(
                        f"row {self._row} has values beyond the {ncols} header columns",
                        row=self._row,
                    )
                if all(v is None for v in values[:ncols]):
                    continue
                for i in range(ncols):
                    columns[i].append(cell_text(values[i]) if i < len(values) else None)
                if len(columns[0]) >= self._chunk_rows:
                    yield self._chunk(first, columns)
                    columns = [[] for _ in range(ncols)]
                    first = self._row + 1
            if columns[0]:
                yield self._chunk(first, columns)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
            failure = type(exc).__name__
        finally:
            self.close()
        if failure is not None:
            raise MalformedFile(
                f"the workbook cannot be read after row {self._row} ({failure})", row=self._row
            )

    def _chunk(self, first: int, columns: list[list[str | None]]) -> Chunk:
        self._done += len(columns[0])
        arrays = [pa.array(col, type=pa.string()) for col in columns]
        return Chunk(first, pa.Table.from_arrays(arrays, names=self.columns))


# ---------------------------------------------------------------------------- Parquet


class ParquetSource(Source):
    def __init__(self, path: Path, chunk_rows: int):
        failure = None
        try:
            self._file = pq.ParquetFile(path)
            schema = self._file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            failure = type(exc).__name__
        if failure is not None:
            raise MalformedFile(f"the Parquet file cannot be read ({failure})")
        warn: list[str] = []
        try:
            names = clean_names([f.name for f in schema], warn)
            for f in schema:
                t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
                if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
                    raise UnsupportedFormat(
                        f"column {f.name!r} has type {t}, which cannot be published",
                        column=f.name,
                    )
        except BaseException:
            self._file.close()
            raise
        super().__init__("parquet", None, names, self._file.metadata.num_rows, warn)
        self._chunk_rows = chunk_rows
        self._done = 0

    def position(self) -> int:
        return self._done

    def close(self) -> None:
        self._file.close()

    def chunks(self) -> Iterator[Chunk]:
        row = 2
        failure = None
        try:
            for batch in self._file.iter_batches(batch_size=self._chunk_rows):
                arrays = [
                    col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
                    for col in batch.columns
                ]
                table = pa.Table.from_arrays(arrays, names=self.columns)
                self._done += table.num_rows
                yield Chunk(row, table)
                row += table.num_rows
        except (pa.ArrowException, OSError) as exc:
            failure = type(exc).__name__
        finally:
            self.close()
        if failure is not None:
            raise MalformedFile(
                f"the Parquet file cannot be read after row {row - 1} ({failure})", row=row
            )
