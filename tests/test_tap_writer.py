"""tap-crm's Singer writer (tap_crm/writer.py): blocks of RECORD lines, flushed with every other
message, and whole lines even when a signal handler writes in the middle of a flush."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.simple import StateMessage

from tap_crm.writer import BLOCK_BYTES, OrjsonWriter


class Pipe(io.RawIOBase):
    """A raw (unbuffered, as under PYTHONUNBUFFERED=1) stdout that takes at most ``chunk``
    bytes per write and can run a callback on its first write, as a signal would."""

    def __init__(self, chunk: int, on_first_write: Any = None) -> None:
        self.data = bytearray()
        self.chunk = chunk
        self.writes = 0
        self.on_first_write = on_first_write

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.writes += 1
        if self.writes == 1 and self.on_first_write is not None:
            self.on_first_write()
        part = bytes(b[: self.chunk])
        self.data += part
        return len(part)


class Stdout:
    def __init__(self, raw: Pipe) -> None:
        self.buffer = raw

    def flush(self) -> None:
        pass


def record(n: int) -> RecordMessage:
    return RecordMessage(stream="s", record={"id": str(n), "pad": "x" * 500})


def lines(raw: Pipe) -> list[dict[str, Any]]:
    text = raw.data.decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_given_records_when_written_then_they_leave_in_blocks_and_a_state_flushes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = Pipe(chunk=1 << 30)
    monkeypatch.setattr(sys, "stdout", Stdout(raw))
    writer = OrjsonWriter()
    count = 3 * BLOCK_BYTES // 500
    for n in range(count):
        writer.write_message(record(n))
    writes_for_records = raw.writes
    writer.write_message(StateMessage(value={"n": count}))
    out = lines(raw)
    assert 0 < writes_for_records < count // 10  # blocks, not one write per record
    assert [m["record"]["id"] for m in out[:-1]] == [str(n) for n in range(count)]
    assert out[-1] == {"type": "STATE", "value": {"n": count}}


def test_given_a_signal_handler_writing_during_a_flush_when_flushing_then_lines_stay_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = OrjsonWriter()
    # The pipe takes 100 bytes per write, and a "SIGTERM handler" writes the last STATE while
    # the first block is half written, as singer-sdk's termination handler does.
    raw = Pipe(chunk=100, on_first_write=lambda: writer.write_message(StateMessage(value={})))
    monkeypatch.setattr(sys, "stdout", Stdout(raw))
    for n in range(5):
        writer.write_message(record(n))
    writer.flush()
    out = lines(raw)  # every line parses: none was cut by the handler's write
    assert [m.get("record", {}).get("id") for m in out] == ["0", "1", "2", "3", "4", None]
    assert out[-1]["type"] == "STATE"
