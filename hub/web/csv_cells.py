"""CSV cells that a spreadsheet will not run: every CSV the hub serves is written through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets, so a partner named ``=HYPERLINK(...)`` would be a
live link (or worse) in the operator's export. Such text gets a leading single quote, which the
spreadsheets show as text. A plain number (``-12.50``, a reversal's amount) is left alone: it is
no formula, and quoting it would turn the column into text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
CHUNK_ROWS = 1000  # rows per streamed piece


def safe_cell(value: Any) -> Any:
    """`value`, with a leading ``'`` when it is text a spreadsheet would take for a formula."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def csv_lines(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header and every row as CSV text with neutralised cells, in pieces for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(v) for v in header])
    for n, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(v) for v in row])
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
