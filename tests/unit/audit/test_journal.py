"""routing/audit/journal.py: segments are private, locked while their process lives, adopted
after it dies (really killed here), deleted once their rows are in."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import orjson

from routing.audit.journal import Journal

FIELDS = ["request_id", "status"]


def entry(i: int) -> bytes:
    return orjson.dumps([[f"req_{i}", 200], []]) + b"\n"


def files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("journal-"))


def test_append_rotate_done_deletes_the_finished_segment(tmp_path):
    j = Journal(str(tmp_path / "j"), FIELDS)
    first = j.append(entry(1))
    assert stat.S_IMODE(os.stat(tmp_path / "j").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    j.rotate()
    second = j.append(entry(2))
    assert second is not first and len(files(tmp_path / "j")) == 2
    j.done(first)
    assert files(tmp_path / "j") == [os.path.basename(second.path)]
    j.done(second)  # current: kept until rotated
    assert len(files(tmp_path / "j")) == 1
    j.rotate()
    assert files(tmp_path / "j") == []


def test_a_living_owner_keeps_its_segments(tmp_path):
    owner, other = Journal(str(tmp_path), FIELDS), Journal(str(tmp_path), FIELDS)
    owner.append(entry(1))
    assert other.adopt_orphans() == []
    for seg in owner.segments:  # what the kernel does when the owner dies
        os.close(seg.fd)
    adopted = other.adopt_orphans()
    assert len(adopted) == 1
    fields, entries, bad = other.read(adopted[0])
    assert fields == FIELDS and entries == [[["req_1", 200], []]] and bad == []


def test_segments_of_a_killed_process_are_adopted(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from routing.audit.journal import Journal
        j = Journal({str(tmp_path)!r}, ["request_id", "status"])
        for i in range(100):
            j.append(b'[["req_%d", 200], []]\\n' % i)
            if i == 49:
                j.rotate()
        print("written", flush=True)
        sys.stdin.read()  # alive until killed
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"written"
    me = Journal(str(tmp_path), FIELDS)
    assert me.adopt_orphans() == []  # alive: locked
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    adopted = me.adopt_orphans()
    assert len(adopted) == 2
    ids = [e[0][0] for seg in adopted for e in me.read(seg)[1]]
    assert sorted(ids) == sorted(f"req_{i}" for i in range(100))
    for seg in adopted:
        me.loaded_now(seg, 1)
        me.done(seg)
    assert files(tmp_path) == []


def test_a_torn_last_line_is_reported_not_parsed(tmp_path):
    j = Journal(str(tmp_path), FIELDS)
    seg = j.append(entry(1))
    os.write(seg.fd, b'[["req_2", 2')  # the process died mid-write
    os.close(seg.fd)
    other = Journal(str(tmp_path), FIELDS)
    (adopted,) = other.adopt_orphans()
    fields, entries, bad = other.read(adopted)
    assert [e[0][0] for e in entries] == ["req_1"] and bad == [b'[["req_2", 2']


def test_abandoned_temporary_files_are_removed(tmp_path):
    (tmp_path / ".journal-1-2-0.tmp").write_bytes(b"")
    assert Journal(str(tmp_path), FIELDS).adopt_orphans() == []
    assert os.listdir(tmp_path) == []


def test_an_unwritable_directory_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    j = Journal(str(blocker / "journal"), FIELDS)
    assert j.append(entry(1)) is None and j.error
