"""The parser's cost is linear in every input, and its warnings name the right line (issue
15, fault 9: each malformed line was looked up again from the start of the table, by
identity, so 4,000 bad lines cost 2.2 s, 16,000 cost 48 s, and repeated short lines, which
are one shared object, were all reported as the first).

Work is counted, not timed: the number of lines of the parser's module executed (a
``sys.settrace`` line count) for ``n`` and for ``4 n`` lines of one shape must grow by about
four, whatever the shape."""

from __future__ import annotations

import sys
import warnings
from types import FrameType
from typing import Any, Callable, List, Optional

import pytest
from _ns import isolated_for

import mountprobe
from mountprobe import mountinfo

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

GOOD = b"20 1 0:19 / /m rw - tmpfs tmpfs rw"


def shapes() -> List[Any]:
    """(name, a function of i giving the i-th line of a table of that shape)."""
    return [
        ("short identical bad lines", lambda i: b"x"),
        ("identical bad lines", lambda i: b"this is not a mountinfo line"),
        ("distinct bad lines", lambda i: b"%d garbage" % i),
        ("no separator", lambda i: b"%d 1 0:19 / /m%d rw tmpfs tmpfs rw" % (i + 2, i)),
        ("bad device number", lambda i: b"%d 1 0x%d / /m rw - tmpfs tmpfs rw" % (i + 2, i)),
        ("bad mount id", lambda i: b"id%d 1 0:1 / /m rw - tmpfs tmpfs rw" % i),
        ("bad optional field", lambda i: b"%d 1 0:1 / /m rw master:x%d - tmpfs t rw" % (i + 2, i)),
        ("comments and blanks", lambda i: b"# comment %d" % i if i % 2 else b"   "),
        (
            "distinct good lines",
            lambda i: b"%d 1 0:%d / /m%d rw shared:%d - tmpfs src%d rw,size=%dk" % ((i + 2,) + (i,) * 5),
        ),
        (
            "escapes and quotes",
            lambda i: (
                b'%d 1 0:1 /a\\040%d /m\\011%d rw - ext4 /dev/x\\134%d rw,context="s0:c%d,c1",x=\\043'
                % ((i + 2,) + (i,) * 4)
            ),
        ),
        ("many optional fields", lambda i: b"%d 1 0:1 / /m rw " % (i + 2) + b"shared:1 master:2 " * 20 + b"- t s rw"),
        ("interleaved good and bad", lambda i: GOOD if i % 2 else b"%d bad" % i),
    ]


def executed_lines(work: Callable[[bytes], object], data: bytes) -> int:
    """How many lines of mountprobe/mountinfo.py ``work(data)`` executes."""
    count = 0
    target = mountinfo.__file__

    def local(frame: FrameType, event: str, arg: object) -> Optional[Callable[..., Any]]:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: FrameType, event: str, arg: object) -> Optional[Callable[..., Any]]:
        return local if frame.f_code.co_filename == target else None

    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        work(data)
    finally:
        sys.settrace(previous)
    return count


def parse_quietly(data: bytes) -> None:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        mountprobe.parse_mountinfo(data)


@isolated_for(120)  # the quadratic parser took minutes here: caught as a hang, not timed
def test_parse_work_grows_linearly_with_the_table_for_every_shape_of_line() -> None:
    n = 500
    wrong = []
    for name, line in shapes():
        small = b"\n".join(line(i) for i in range(n)) + b"\n"
        large = b"\n".join(line(i) for i in range(4 * n)) + b"\n"
        ratio = executed_lines(parse_quietly, large) / executed_lines(parse_quietly, small)
        if not 3.0 <= ratio <= 4.6:
            wrong.append(f"{name}: {4 * n} lines cost {ratio:.1f} times {n} lines")
    assert not wrong, wrong


@isolated_for(60)
def test_a_table_of_100000_malformed_lines_is_parsed_without_a_hang() -> None:
    data = b"".join(b"%d junk\n" % i for i in range(100_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mountprobe.parse_mountinfo(data) == []
    assert len(caught) == 100_000


def warned_lines(parse: Callable[[bytes], object], data: bytes) -> List[int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse(data)
    return [int(str(w.message).split()[2]) for w in caught if issubclass(w.category, mountprobe.ParseWarning)]


def test_warnings_name_the_line_number_of_each_repeated_identical_line() -> None:
    for bad in (b"x", b"not a line", b"20 1 0:19 / /m rw tmpfs tmpfs rw"):
        data = b"\n".join([bad, bad, GOOD, bad, b"", b"# comment", bad, bad]) + b"\n"
        assert warned_lines(mountprobe.parse_mountinfo, data) == [1, 2, 4, 7, 8], bad
        assert warned_lines(mountprobe.parse_mountinfo, data.replace(b"\n", b"\r\n")) == [1, 2, 4, 7, 8], bad
        with pytest.raises(mountprobe.ParseError) as error:
            mountprobe.parse_mountinfo(GOOD + b"\n" + GOOD + b"\n" + bad + b"\n" + bad, strict=True)
        assert error.value.lineno == 3


def test_filtered_parses_name_the_line_number_in_the_whole_table() -> None:
    bad_at_m = b"21 1 0:19 / /m rw - tmpfs"  # the mount point /m, then too few fields
    data = b"\n".join([GOOD, b"x", bad_at_m, b"x", GOOD, bad_at_m]) + b"\n"
    assert warned_lines(lambda d: mountinfo.find_at(d, b"/m"), data) == [3, 6]
    assert warned_lines(lambda d: mountinfo.find_under(d, b"/", True), data) == [3, 6]
    assert warned_lines(lambda d: mountinfo.find_by_id(d, 21), data) == [3, 6]


def test_the_parser_keeps_nothing_between_calls() -> None:
    # Issue 15, fault 18 (unbounded caches): every memo of the parser lives for one call.
    import gc
    import tracemalloc

    def distinct(i: int) -> bytes:
        return b'%d 1 0:%d /r%d /m%d rw,x%d shared:%d - fs%d src%d rw,opt%d,context="a:c%d,c1"\n' % (
            (i + 2,) + (i,) * 9
        )

    mountprobe.parse_mountinfo(distinct(0))
    mountinfo.split_options(b"warm,up")
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(2_000):
            mountprobe.parse_mountinfo(distinct(i) + distinct(i + 1))
            mountinfo.split_options(b'opt%d,context="x:c%d,c1"' % (i, i))
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    files = [tracemalloc.Filter(True, mountinfo.__file__), tracemalloc.Filter(True, mountprobe.model.__file__)]
    grown = sum(
        stat.size_diff for stat in after.filter_traces(files).compare_to(before.filter_traces(files), "filename")
    )
    assert grown < 10_000, f"{grown} bytes kept by the parser after 2,000 calls"


def test_decoding_the_table_in_chunks_changes_no_record_and_no_line_number(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    samples = sorted((Path(__file__).parent / "data").rglob("*.mountinfo"))
    data = b"".join(path.read_bytes().rstrip(b"\n") + b"\n" for path in samples) + b"x\n\n" + GOOD

    def parsed() -> Any:
        records: List[mountprobe.Mount] = []
        return warned_lines(lambda d: records.extend(mountprobe.parse_mountinfo(d)), data), records

    whole = parsed()
    assert len(whole[1]) > 100 and whole[0]
    for size in (1, 7, 100, 4096):
        monkeypatch.setattr(mountinfo, "_CHUNK", size)
        assert parsed() == whole, size


def test_a_warning_points_at_the_caller_of_parse_mountinfo() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mountprobe.parse_mountinfo(b"junk\n")
    assert [w.filename for w in caught] == [__file__]
