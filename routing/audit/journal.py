"""The request-log journal: every accepted row is on disk before the request ends.

`LogWriter.enqueue` appends the row's entry (one JSON line) to this process's current
journal segment with one `write()`: from then on the row survives the process dying
(kill -9, the OOM killer), because the kernel holds the bytes. Whether they are also
forced to the disk (surviving a machine crash) is the `fsync` setting: the writer
thread calls `sync()` before each batch it inserts, off the event loop.

Files: `<dir>/journal-<pid>-<start ns>-<seq>.jsonl`, mode 0600, in a 0700 directory.
The first line names the columns (`{"fields": [...]}`), so a journal written before a
schema change can still be replayed. Each segment is held with an exclusive `flock`
for as long as its process lives; the kernel releases it when the process dies,
however it dies. A segment is created under a temporary name, locked, then renamed,
so no other process ever sees it unlocked while its owner lives.

Lifecycle: the writer rotates to a new segment after each batch it writes; a segment
that is not current and whose rows are all in the database (or quarantined) is
deleted. Any process (at start, then every SCAN_SECONDS) adopts segments it can lock:
their owner is dead. Adopted rows are inserted again (`ON CONFLICT DO NOTHING` on
`request_id` makes that idempotent) and the file is deleted once they are all in.
While the database is away segments are kept; past the in-memory backlog, rows of old
segments are dropped from memory ("spilled") and read back from the file later.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import time

import orjson

log = logging.getLogger(__name__)
SCAN_SECONDS = 10.0


class Segment:
    __slots__ = ("path", "fd", "rows", "outstanding", "loaded", "size")

    def __init__(self, path: str, fd: int, *, loaded: bool) -> None:
        self.path, self.fd = path, fd
        self.rows = 0  # entries appended by this process
        self.outstanding = 0  # entries in memory, not yet in the database
        self.loaded = loaded  # False: its rows are only in the file (adopted or spilled)
        self.size = 0

    def __repr__(self) -> str:
        return f"Segment({os.path.basename(self.path)}, outstanding={self.outstanding}, loaded={self.loaded})"


class Journal:
    def __init__(self, directory: str, fields: list[str]) -> None:
        self.dir = directory
        self.header = orjson.dumps({"fields": fields}) + b"\n"
        self.prefix = f"journal-{os.getpid()}-{time.time_ns()}"
        self._seq = itertools.count()
        self.current: Segment | None = None
        self.segments: list[Segment] = []  # this process's, oldest first (own and adopted)
        self.error = ""  # the last I/O error, for the writer's health
        self.dirty: set[int] = set()  # fds written since the last sync
        self.last_scan = 0.0

    # --- the hot path -------------------------------------------------------------------------------------------

    def append(self, line: bytes) -> Segment | None:
        """Append one entry; None if it could not be written (the row then lives in memory only)."""
        try:
            seg = self.current or self._new_segment()
            os.write(seg.fd, line)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return None
        seg.rows += 1
        seg.outstanding += 1
        seg.size += len(line)
        self.dirty.add(seg.fd)
        return seg

    def _new_segment(self) -> Segment:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        name = f"{self.prefix}-{next(self._seq)}"
        temp = os.path.join(self.dir, f".{name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, self.header)
            path = os.path.join(self.dir, name + ".jsonl")
            os.rename(temp, path)
        except OSError:
            os.close(fd)
            raise
        seg = self.current = Segment(path, fd, loaded=True)
        self.segments.append(seg)
        return seg

    # --- bookkeeping (event loop) -------------------------------------------------------------------------------

    def rotate(self) -> None:
        """New entries go to a new segment; the old one is deleted once its rows are in."""
        seg = self.current
        if seg is not None and seg.rows:
            self.current = None
            self._retire_if_done(seg)

    def done(self, seg: Segment | None) -> None:
        """One entry of `seg` is in the database (or quarantined)."""
        if seg is not None:
            seg.outstanding -= 1
            self._retire_if_done(seg)

    def _retire_if_done(self, seg: Segment) -> None:
        if seg.outstanding <= 0 and seg.loaded and seg is not self.current and seg in self.segments:
            self.segments.remove(seg)
            self.dirty.discard(seg.fd)
            try:
                os.unlink(seg.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            os.close(seg.fd)

    def spill(self, seg: Segment) -> None:
        """Its rows were dropped from memory: they will be read back from the file."""
        seg.loaded, seg.outstanding = False, 0

    def unloaded(self) -> list[Segment]:
        return [s for s in self.segments if not s.loaded]

    def close(self) -> int:
        """At shutdown: delete finished segments, keep (and unlock) the rest. Returns how many are kept."""
        self.current = None
        kept = 0
        for seg in list(self.segments):
            self._retire_if_done(seg)
        for seg in self.segments:
            kept += 1
            os.close(seg.fd)
        self.segments = []
        return kept

    # --- adoption (event loop: a listdir and a lock per file) and reading (a worker thread) ---

    def adopt_orphans(self) -> list[Segment]:
        """Lock the segments of dead processes (and tidy their abandoned temporary files)."""
        self.last_scan = time.monotonic()
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        mine = {os.path.basename(s.path) for s in self.segments}
        adopted = []
        for name in names:
            is_temp = name.startswith(".journal-") and name.endswith(".tmp")
            if name in mine or not (is_temp or (name.startswith("journal-") and name.endswith(".jsonl"))):
                continue
            path = os.path.join(self.dir, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                os.close(fd)
                continue
            if is_temp:  # a process died between creating and naming a segment: nothing was appended
                _unlink_quietly(path)
                os.close(fd)
                continue
            seg = Segment(path, fd, loaded=False)
            self.segments.append(seg)
            adopted.append(seg)
        if adopted:
            log.warning("adopted %d request-log journal segment(s) of ended processes", len(adopted))
        return adopted

    def scan_due(self) -> bool:
        return time.monotonic() - self.last_scan >= SCAN_SECONDS

    def read(self, seg: Segment) -> tuple[list[str] | None, list, list[bytes]]:
        """(fields, entries, unreadable lines) of a segment file."""
        with open(seg.path, "rb") as fh:  # we hold its lock: nobody else deletes it
            data = fh.read()
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the file ends with a newline
        fields, entries, bad = None, [], [torn] if torn else []
        for line in lines:
            if not line:
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                bad.append(line)
                continue
            if isinstance(value, dict) and "fields" in value:
                fields = value["fields"]
            elif isinstance(value, list) and len(value) == 2 and isinstance(value[0], list):
                entries.append(value)
            else:
                bad.append(line)
        return fields, entries, bad

    def loaded_now(self, seg: Segment, count: int) -> None:
        seg.loaded, seg.outstanding = True, count
        self._retire_if_done(seg)

    def sync(self) -> None:
        """Force what was appended to the disk (a worker thread calls this)."""
        fds, self.dirty = self.dirty, set()
        for fd in fds:
            try:
                os.fdatasync(fd)
            except OSError:  # closed meanwhile (retired): its rows are in the database
                pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
