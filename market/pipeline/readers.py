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
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import ParseError as XmlParseError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from market.i18n import N_

from .encoding import SAMPLE_BYTES, detect_encoding
from .errors import EncodingError, LimitExceeded, MalformedFile, PipelineError, UnsupportedFormat
from .report import Note, note
from .sealed import InputFile, input_size, open_input

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm"}
PARQUET_EXTENSIONS = {".parquet", ".pq"}
_DELIMITERS = (",", "\t", ";", "|")
_MB = 1 << 20
#: Excel's own sheet size: a workbook claiming more was not made by a spreadsheet program.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
#: Parts of a workbook smaller than this are not judged by their compression ratio (tiny XML
#: files compress unevenly and cannot hurt).
RATIO_MIN_BYTES = _MB
#: How far into an XML part its prolog (where a DTD would be) may reach.
PROLOG_MAX_BYTES = 64 * 1024
_START_TAG = re.compile(rb"<[A-Za-z_]")
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class ReadLimits:
    """Caps checked before and while a workbook is parsed (zip bombs)."""

    #: Sum of the unpacked sizes of the workbook's parts.
    xlsx_max_unpacked_bytes: int = 1 << 30
    #: Unpacked size over packed size, per part of at least RATIO_MIN_BYTES.
    xlsx_max_ratio: int = 100
    #: Rows and cells of the first worksheet (from its ``dimension`` and counted while read).
    xlsx_max_rows: int = EXCEL_MAX_ROWS
    xlsx_max_cells: int = 50_000_000


DEFAULT_LIMITS = ReadLimits()


@dataclass
class Chunk:
    #: Row number of the chunk's first data row, counting the header as row 1.
    first_row: int
    table: pa.Table


def _may_hold_nul(arr: pa.Array) -> bool:
    """Whether the character data behind a string array has a zero byte: a scan of the raw
    buffer, much cheaper than a substring kernel over the values, and never a false negative
    (the buffer may extend beyond a sliced array, so it may be a false positive)."""
    data = arr.buffers()[2]
    return data is not None and data.size > 0 and bool(np.frombuffer(data, np.uint8).min() == 0)


@dataclass
class Source:
    """An open input file. ``total`` and :meth:`position` share a unit: bytes for CSV, rows
    otherwise."""

    format: str
    encoding: str | None
    columns: list[str]
    total: int
    warnings: list[Note] = field(default_factory=list)

    #: Cells per column in which NUL bytes were found (and removed) so far.
    nul_cells: dict[str, int] = field(default_factory=dict)

    def chunks(self) -> Iterator[Chunk]:
        """The file's rows, ``chunk_rows`` at a time, NUL bytes removed from text cells.

        NUL is never data (PostgreSQL text cannot even hold it); removing it is reported in
        :attr:`nul_cells`, which the pipeline turns into a report warning.
        """
        inner = self._read_chunks()
        try:
            for chunk in inner:
                yield Chunk(chunk.first_row, self._strip_nul(chunk.table))
        finally:
            inner.close()

    def _strip_nul(self, table: pa.Table) -> pa.Table:
        for index, name in enumerate(table.column_names):
            col = table.column(index)
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                continue
            if not any(_may_hold_nul(chunk) for chunk in col.chunks):
                continue
            hits = pc.sum(pc.match_substring(col, "\x00")).as_py() or 0
            if hits:
                self.nul_cells[name] = self.nul_cells.get(name, 0) + int(hits)
                table = table.set_column(
                    index, name, pc.replace_substring(col, "\x00", "")
                )
        return table

    def _read_chunks(self) -> Iterator[Chunk]:  # pragma: no cover - overridden
        raise NotImplementedError

    def position(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def detect_format(path: InputFile, filename: str) -> str:
    """'csv', 'xlsx' or 'parquet' from the file name, checked against the content.

    Raises UnsupportedFormat (wrong or unknown type) or MalformedFile (empty, truncated).
    """
    ext = Path(filename).suffix.lower()
    with open_input(path) as f:
        head = f.read(8)
        size = f.seek(0, io.SEEK_END)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if size == 0:
        raise MalformedFile(N_("the file is empty"))
    if ext == ".xls" or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedFormat(
            N_("legacy .xls workbooks are not supported: save as .xlsx or CSV")
        )
    if ext in CSV_EXTENSIONS:
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PAR1"):
            raise UnsupportedFormat(
                N_("the file is named %(ext)s but is not text: check its type"), ext=ext
            )
        return "csv"
    if ext in XLSX_EXTENSIONS:
        if not head.startswith(b"PK\x03\x04"):
            raise MalformedFile(
                N_("the file is named %(ext)s but is not an Excel workbook"), ext=ext
            )
        return "xlsx"
    if ext in PARQUET_EXTENSIONS:
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            raise MalformedFile(N_("the file is not a complete Parquet file"))
        return "parquet"
    if not ext:
        raise UnsupportedFormat(
            N_("unsupported file type (no extension): upload CSV, XLSX or Parquet")
        )
    raise UnsupportedFormat(
        N_("unsupported file type %(ext)s: upload CSV, XLSX or Parquet"), ext=ext
    )


def open_source(
    path: InputFile, filename: str, *, chunk_rows: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Source:
    """Open ``path`` (uploaded as ``filename``). Raises the typed errors of the readers,
    LimitExceeded for a workbook beyond ``limits``."""
    fmt = detect_format(path, filename)
    if isinstance(path, str | Path):
        path = Path(path)
    if fmt == "csv":
        return CsvSource(path, chunk_rows, tsv=filename.lower().endswith(".tsv"))
    if fmt == "xlsx":
        return XlsxSource(path, chunk_rows, limits)
    return ParquetSource(path, chunk_rows)


# ---------------------------------------------------------------------------- CSV


def _header(text: str, delimiter: str) -> list[str]:
    try:
        row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        raise MalformedFile(N_("the header row cannot be parsed"), row=1) from None
    return row


def clean_names(raw: list[str], warn: list[Note]) -> list[str]:
    """Trimmed header names; blanks get a placeholder; duplicates raise MalformedFile."""
    names: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(raw, start=1):
        if "\x00" in name:
            name = name.replace("\x00", "")
            warn.append(note(N_("the header of column %(position)s contained NUL bytes, which "
                                "were removed"), position=i))
        name = name.strip().lstrip("\ufeff").strip()
        if not name:
            name = f"column_{i}"
            warn.append(note(N_("column %(position)s has no header; it was named %(name)s"),
                             position=i, name=name))
        if name in seen:
            raise MalformedFile(
                N_("column name '%(name)s' appears twice in the header"),
                row=1,
                column=name,
                name=name,
            )
        seen.add(name)
        names.append(name)
    if not names:
        raise MalformedFile(N_("the file has no header row"), row=1)
    return names


_QUOTE = ord('"')


class _QuoteCountingFile(io.RawIOBase):
    """The raw file, counting the double quotes that go by.

    A well-formed CSV has an even number of quote characters (escaped quotes come in pairs);
    an odd count means a quoted value never closes, which Arrow silently accepts by reading
    to the end of the file. The byte 0x22 never occurs inside a UTF-8 or GB18030 multi-byte
    character, so the raw bytes can be counted whatever the encoding.
    """

    def __init__(self, path: InputFile):
        self._f = open_input(path)
        self.quotes = 0
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        n = self._f.readinto(buffer)
        if n:
            # numpy compares in place (no copy of the block) with SIMD: ~5x bytes.count
            self.quotes += int(np.count_nonzero(np.frombuffer(buffer, np.uint8, n) == _QUOTE))
            self.position += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class CsvSource(Source):
    def __init__(self, path: InputFile, chunk_rows: int, *, tsv: bool = False):
        reported, codec = detect_encoding(path)
        with open_input(path) as f:
            head = f.read(SAMPLE_BYTES)
        text = codecs.getincrementaldecoder(codec)("replace").decode(head, final=False)
        text = text.lstrip("\ufeff")
        first_line = text.split("\n", 1)[0]
        delimiter = "\t" if tsv else max(_DELIMITERS, key=lambda d: (first_line.count(d), d == ","))
        warn: list[Note] = []
        names = clean_names(_header(text, delimiter), warn)
        super().__init__("csv", reported, names, input_size(path), warn)
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

    def _read_chunks(self) -> Iterator[Chunk]:
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
            with open_input(self._path) as f:
                for number, raw in enumerate(f, start=1):
                    try:
                        text: str | None = decoder.decode(raw)
                    except UnicodeDecodeError:
                        text = None  # the exception holds the raw bytes: not kept
                    if text is None:
                        raise EncodingError(
                            N_("line %(line)s is not valid %(encoding)s text"),
                            row=number,
                            line=number,
                            encoding=self.encoding,
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
                        N_("row %(number)s has %(fields)s fields but the header has %(columns)s"),
                        row=record,
                        number=record,
                        fields=len(fields),
                        columns=ncols,
                    )
        except EncodingError as err:
            return err
        except csv.Error:
            return MalformedFile(
                N_("row %(number)s cannot be parsed: a quoted value is not closed"),
                row=record + 1,
                number=record + 1,
            )
        return MalformedFile(
            N_("the file cannot be parsed near row %(number)s"), row=near_row, number=near_row
        )


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
    def __init__(self, path: InputFile, chunk_rows: int, limits: ReadLimits = DEFAULT_LIMITS):
        import openpyxl

        # Before openpyxl reads anything (it loads the shared strings whole): refuse bombs.
        check_workbook(path, limits)
        self._limits = limits
        self._handle = open_input(path)
        warn: list[Note] = []
        failure = None
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; they do not matter.
                warnings.simplefilter("ignore")
                self._book = openpyxl.load_workbook(self._handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, XmlParseError,
                SyntaxError) as exc:
            failure = type(exc).__name__
        if failure is not None:
            self._handle.close()
            raise MalformedFile(N_("the workbook cannot be read (%(failure)s)"), failure=failure)
        try:
            names, total = self._open_sheet(warn)
        except BaseException:
            self.close()
            raise
        super().__init__("xlsx", None, names, total, warn)
        self._chunk_rows = chunk_rows
        self._done = 0
        self._cells = 0

    def _open_sheet(self, warn: list[Note]) -> tuple[list[str], int]:
        """Read the header of the first worksheet: (column names, data rows expected)."""
        if not self._book.worksheets:
            raise MalformedFile(N_("the workbook has no worksheet"))
        sheet = self._book.worksheets[0]
        _check_dimension(sheet.max_row, sheet.max_column, self._limits)
        if len(self._book.worksheets) > 1:
            # The sheet's title is the workbook's structure, not a cell value.
            warn.append(note(N_("only the first worksheet (%(sheet)s) was read"),
                             sheet=str(sheet.title)))
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
        self._handle.close()

    def _read_chunks(self) -> Iterator[Chunk]:
        ncols = len(self.columns)
        columns: list[list[str | None]] = [[] for _ in range(ncols)]
        first = self._row + 1
        failure = None
        try:
            for values in self._rows:
                self._row += 1
                self._cells += len(values)
                _check_counted(self._row, self._cells, self._limits)
                if len(values) > ncols and any(v is not None for v in values[ncols:]):
                    raise MalformedFile(
                        N_("row %(number)s has values beyond the %(columns)s header columns"),
                        row=self._row,
                        number=self._row,
                        columns=ncols,
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
        except PipelineError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, XmlParseError,
                SyntaxError) as exc:
            failure = type(exc).__name__
        finally:
            self.close()
        if failure is not None:
            raise MalformedFile(
                N_("the workbook cannot be read after row %(number)s (%(failure)s)"),
                row=self._row,
                number=self._row,
                failure=failure,
            )

    def _chunk(self, first: int, columns: list[list[str | None]]) -> Chunk:
        self._done += len(columns[0])
        arrays = [pa.array(col, type=pa.string()) for col in columns]
        return Chunk(first, pa.Table.from_arrays(arrays, names=self.columns))


# ---------------------------------------------------------------------------- XLSX guard


def _mb(n: int) -> str:
    return f"{n / _MB:.1f}"


def check_workbook(source: InputFile, limits: ReadLimits = DEFAULT_LIMITS) -> None:
    """Refuse a zip bomb or a workbook with a DTD before any XML of it is parsed.

    Reads only the zip directory and the first bytes of each XML part. Raises LimitExceeded
    (``limit`` = ``unpacked`` or ``ratio``) and MalformedFile (not a zip, a DTD, a prolog that
    never ends). Zip entries never unpack beyond their declared size (the zipfile module cuts
    them there and the CRC check then fails), so the directory's sizes can be trusted.
    """
    with open_input(source) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise MalformedFile(N_("the workbook is not a valid zip archive")) from None
        with archive:
            members = archive.infolist()
            unpacked = sum(m.file_size for m in members)
            if unpacked > limits.xlsx_max_unpacked_bytes:
                raise LimitExceeded(
                    N_("the workbook unpacks to %(size)s MB; at most %(max_size)s MB are "
                       "accepted"),
                    limit="unpacked",
                    size=_mb(unpacked),
                    max_size=_mb(limits.xlsx_max_unpacked_bytes),
                )
            for m in members:
                if m.file_size >= RATIO_MIN_BYTES:
                    ratio = m.file_size / max(1, m.compress_size)
                    if ratio > limits.xlsx_max_ratio:
                        raise LimitExceeded(
                            N_("a part of the workbook is compressed %(ratio)s to 1; at most "
                               "%(max_ratio)s to 1 is accepted (this is how zip bombs look)"),
                            limit="ratio",
                            ratio=int(ratio),
                            max_ratio=limits.xlsx_max_ratio,
                        )
            for m in members:
                if m.filename.lower().endswith((".xml", ".rels", ".vml")):
                    _check_prolog(archive, m)


def _check_prolog(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    try:
        with archive.open(member) as fh:
            head = b""
            while len(head) < PROLOG_MAX_BYTES:
                block = fh.read(4096)
                if not block:
                    break
                head += block
                if _START_TAG.search(head):
                    break
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        raise MalformedFile(N_("the workbook is damaged: a part of it cannot be unpacked")) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", "replace").encode("utf-8", "replace")
    found = _START_TAG.search(head)
    prolog = head[: found.start()] if found else head
    if _DTD.search(prolog):
        raise MalformedFile(
            N_("the workbook contains a document type declaration (DTD), which is refused for "
               "security reasons; open it in Excel or WPS and save it again as .xlsx")
        )
    if found is None and len(head) >= PROLOG_MAX_BYTES:
        raise MalformedFile(
            N_("a part of the workbook does not start like a spreadsheet; save it again as .xlsx")
        )


def _check_dimension(rows: int | None, columns: int | None, limits: ReadLimits) -> None:
    """The sheet's declared size (its ``dimension``), before any row is read."""
    if rows is not None and rows > limits.xlsx_max_rows:
        raise LimitExceeded(
            N_("the worksheet declares %(rows)s rows; at most %(max_rows)s are accepted"),
            limit="rows",
            rows=rows,
            max_rows=limits.xlsx_max_rows,
        )
    if columns is not None and columns > EXCEL_MAX_COLUMNS:
        raise LimitExceeded(
            N_("the worksheet declares %(columns)s columns; a worksheet has at most "
               "%(max_columns)s"),
            limit="columns",
            columns=columns,
            max_columns=EXCEL_MAX_COLUMNS,
        )
    if rows is not None and columns is not None and rows * columns > limits.xlsx_max_cells:
        raise LimitExceeded(
            N_("the worksheet declares %(cells)s cells; at most %(max_cells)s are accepted"),
            limit="cells",
            cells=rows * columns,
            max_cells=limits.xlsx_max_cells,
        )


def _check_counted(row: int, cells: int, limits: ReadLimits) -> None:
    """The same caps while reading: the ``dimension`` may be missing or lie."""
    if row > limits.xlsx_max_rows:
        raise LimitExceeded(
            N_("the worksheet has more than %(max_rows)s rows"),
            limit="rows",
            row=row,
            max_rows=limits.xlsx_max_rows,
        )
    if cells > limits.xlsx_max_cells:
        raise LimitExceeded(
            N_("the worksheet has more than %(max_cells)s cells"),
            limit="cells",
            row=row,
            max_cells=limits.xlsx_max_cells,
        )


# ---------------------------------------------------------------------------- Parquet


class ParquetSource(Source):
    def __init__(self, path: Path, chunk_rows: int):
        failure = None
        self._handle = open_input(path)
        try:
            self._file = pq.ParquetFile(self._handle)
            schema = self._file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            failure = type(exc).__name__
        if failure is not None:
            self._handle.close()
            raise MalformedFile(N_("the Parquet file cannot be read (%(failure)s)"), failure=failure)
        warn: list[Note] = []
        try:
            names = clean_names([f.name for f in schema], warn)
            for f in schema:
                t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
                if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
                    raise UnsupportedFormat(
                        N_("column '%(name)s' has type %(type)s, which cannot be published"),
                        column=f.name,
                        name=f.name,
                        type=str(t),
                    )
        except BaseException:
            self.close()
            raise
        super().__init__("parquet", None, names, self._file.metadata.num_rows, warn)
        self._chunk_rows = chunk_rows
        self._done = 0

    def position(self) -> int:
        return self._done

    def close(self) -> None:
        self._file.close()
        self._handle.close()

    def _read_chunks(self) -> Iterator[Chunk]:
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
                N_("the Parquet file cannot be read after row %(last)s (%(failure)s)"),
                row=row,
                last=row - 1,
                failure=failure,
            )
