"""Reading messages from files and writing one file per destination (`fastroute route`)."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from pathlib import Path

from ._batch import BinaryColumn, MessageBatch
from ._errors import BatchError

FORMATS = ("jsonl", "csv", "arrow", "parquet")


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {given!r}")
        return given
    suffix = path.suffix.lower().lstrip(".")
    aliases = {"json": "jsonl", "ndjson": "jsonl", "jsonl": "jsonl", "csv": "csv",
               "arrow": "arrow", "feather": "arrow", "ipc": "arrow", "parquet": "parquet"}
    if suffix not in aliases:
        raise ValueError(f"cannot tell the format of {path.name!r} from its suffix; "
                         f"pass --format ({', '.join(FORMATS)})")
    return aliases[suffix]


def _text_or_bytes(v, where: str):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float, bool)):
        return json.dumps(v)
    raise BatchError(f"{where}: expected a string or null, got {type(v).__name__}")


def read_messages(path, fmt: str | None = None) -> tuple[MessageBatch, list]:
    """Read a file of messages into a batch; also return the original records (for output:
    a BinaryColumn of the input lines, the CSV header row first, or the Arrow table).

    JSON Lines: one object per line with "key", "value" (strings or null) and optionally
    "headers" (an object). CSV: a header row with "key" and "value" columns (other columns
    become headers). Arrow IPC / Parquet: "key"/"value" columns (needs pyarrow).

    Raises BatchError naming the line for a malformed record.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt in ("arrow", "parquet"):
        return _read_arrow(path, fmt)
    keys, values, headers, records = [], [], [], []
    if fmt == "jsonl":
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as exc:
                    raise BatchError(f"{path.name} line {lineno}: not JSON ({exc})", lineno) from None
                if not isinstance(rec, dict):
                    raise BatchError(f"{path.name} line {lineno}: expected an object, got {type(rec).__name__}",
                                     lineno)
                keys.append(_text_or_bytes(rec.get("key"), f"{path.name} line {lineno} key"))
                values.append(_text_or_bytes(rec.get("value"), f"{path.name} line {lineno} value"))
                h = rec.get("headers")
                if h is not None and not isinstance(h, dict):
                    raise BatchError(f"{path.name} line {lineno}: headers must be an object", lineno)
                headers.append(h)
                records.append(line.rstrip(b"\r\n") + b"\n")
    else:
        with path.open("r", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "key" not in reader.fieldnames:
                raise BatchError(f"{path.name}: a CSV input needs a header row with a 'key' column")
            extra = [c for c in reader.fieldnames if c not in ("key", "value")]
            for row in reader:
                keys.append(row.get("key"))
                values.append(row.get("value"))
                headers.append({c: row[c] for c in extra if row.get(c) not in (None, "")} or None)
                buf = io.StringIO()
                csv.writer(buf).writerow([row.get(c, "") for c in reader.fieldnames])
                records.append(buf.getvalue().rstrip("\r\n").encode() + b"\n")
        header = io.StringIO()
        csv.writer(header).writerow(reader.fieldnames)
        records.insert(0, header.getvalue().rstrip("\r\n").encode() + b"\n")
    has_headers = any(h for h in headers)
    batch = MessageBatch.from_pylist(keys=keys, values=values, headers=headers if has_headers else None)
    return batch, BinaryColumn.from_pylist(records)


def _read_arrow(path: Path, fmt: str):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError('Arrow and Parquet input need pyarrow: pip install "fastroute[arrow]"') from None
    if fmt == "parquet":
        table = pq.read_table(path)
    else:
        with pa.memory_map(str(path)) as src:
            table = pa.ipc.open_file(src).read_all()
    return MessageBatch.from_arrow(table), table


def safe_name(name) -> str:
    """A file name for a destination (any character outside [A-Za-z0-9._-] is %-escaped)."""
    text = str(name)
    quoted = urllib.parse.quote(text, safe="")
    return quoted.replace("%2E", ".") if quoted not in (".", "..") else quoted.replace(".", "%2E")


def write_outputs(out_dir, fmt: str, routes, records, batch) -> dict:
    """Write each destination's messages (input order) to OUT/<destination>.<ext> and the
    unroutable ones to OUT/_unroutable.<ext>; return {file name: message count}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    groups = routes.groups()
    unroutable = routes.unroutable()
    targets = [(safe_name(name), idx) for name, idx in groups.items() if idx.shape[0]]
    if unroutable.shape[0]:
        targets.append(("_unroutable", unroutable))
    for stem, idx in targets:
        if fmt in ("arrow", "parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            part = records.take(pa.array(idx))
            fname = f"{stem}.{'parquet' if fmt == 'parquet' else 'arrow'}"
            if fmt == "parquet":
                pq.write_table(part, out_dir / fname)
            else:
                with pa.ipc.new_file(str(out_dir / fname), part.schema) as sink:
                    sink.write_table(part)
        else:
            # records hold each input line with its newline; a destination's file is one gather
            fname = f"{stem}.{fmt}"
            rows = idx + 1 if fmt == "csv" else idx
            part = records.take(rows)
            with (out_dir / fname).open("wb") as fh:
                if fmt == "csv":
                    fh.write(records[0])
                fh.write(memoryview(part.data))
        written[fname] = int(idx.shape[0])
    return written

