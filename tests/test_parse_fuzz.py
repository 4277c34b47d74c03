"""parse_mountinfo under hypothesis: any input gives records, ParseWarning or ParseError and
nothing else; entries with any byte in any field round-trip byte-exact."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mountprobe
from mountprobe import mountinfo

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

DATA = Path(__file__).parent / "data"
REAL_LINES = [
    line for path in sorted(DATA.rglob("*.mountinfo")) for line in path.read_bytes().split(b"\n") if line[:1].isdigit()
]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_parse_errors(data: bytes) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = mountprobe.parse_mountinfo(data)
    assert all(issubclass(w.category, mountprobe.ParseWarning) for w in caught)
    assert all(isinstance(m, mountprobe.Mount) for m in found)
    try:
        strict = mountprobe.parse_mountinfo(data, strict=True)
    except mountprobe.ParseError as error:
        assert error.lineno >= 1
    else:
        assert strict == found


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_give_only_records_warnings_or_parse_errors(data: bytes) -> None:
    only_parse_errors(data)


@FUZZ
@given(
    st.sampled_from(REAL_LINES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), st.binary(max_size=3)), max_size=4),
)
def test_mutated_real_lines_give_only_records_warnings_or_parse_errors(
    line: bytes, edits: List[Tuple[int, int, bytes]]
) -> None:
    data = bytearray(line)
    for where, kind, text in edits:
        at = where % (len(data) + 1)
        if kind == 0:
            data[at:at] = text  # insert
        elif kind == 1:
            del data[at : at + len(text) + 1]  # delete
        else:
            data[at : at + len(text)] = text  # overwrite
    only_parse_errors(bytes(data) + b"\n" + line)


# The kernel's escaping (fs/proc_namespace.c): mangle_path for root and mount point,
# mangle() adds '#' for fstype and source; seq_show_option escapes ',' in option values.
def kernel_escape(raw: bytes, special: bytes) -> bytes:
    return b"".join(b"\\%03o" % c if c in special else bytes((c,)) for c in raw)


PATH_SPECIAL = b" \t\n\\"
FIELD_SPECIAL = b" \t\n\\#"
OPTION_SPECIAL = b" \t\n\\,"
no_nul = st.binary(min_size=1, max_size=24).filter(lambda b: b"\0" not in b)
option = st.binary(min_size=1, max_size=12).filter(lambda b: b"\0" not in b and b'"' not in b and not b.endswith(b"\r"))


@FUZZ
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 4095),
    st.integers(0, 2**20 - 1),
    no_nul,
    no_nul,
    st.lists(st.sampled_from(["rw", "ro", "nosuid", "nodev", "relatime", "noatime"]), min_size=1, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "shared": st.integers(1, 2**32 - 1),
            "master": st.integers(1, 2**32 - 1),
            "propagate_from": st.integers(1, 2**32 - 1),
            "unbindable": st.just(True),
        },
    ),
    no_nul,
    st.one_of(st.just(b""), no_nul),
    st.lists(option, min_size=1, max_size=4),
)
def test_entries_with_any_byte_round_trip(
    mnt_id: int,
    parent: int,
    major: int,
    minor: int,
    root: bytes,
    point: bytes,
    options: List[str],
    tags: dict,  # type: ignore[type-arg]
    fstype: bytes,
    source: bytes,
    super_options: List[bytes],
) -> None:
    fields = [b"%d %d %d:%d" % (mnt_id, parent, major, minor), kernel_escape(root, PATH_SPECIAL)]
    fields += [kernel_escape(point, PATH_SPECIAL), ",".join(options).encode()]
    fields += [b"%s:%d" % (k.encode(), v) if k != "unbindable" else b"unbindable" for k, v in tags.items()]
    fields += [b"-", kernel_escape(fstype, FIELD_SPECIAL), kernel_escape(source, FIELD_SPECIAL)]
    fields.append(b",".join(kernel_escape(o, OPTION_SPECIAL) for o in super_options))
    [m] = mountprobe.parse_mountinfo(b" ".join(fields) + b"\n", strict=True)
    assert (m.id, m.parent_id, m.major, m.minor) == (mnt_id, parent, major, minor)
    assert (os.fsencode(m.root), os.fsencode(m.mountpoint), os.fsencode(m.fstype)) == (root, point, fstype)
    assert (os.fsencode(m.source) if m.source is not None else b"") == source
    assert list(m.options) == options
    assert [os.fsencode(o) for o in m.super_options] == super_options
    assert (m.shared, m.master, m.propagate_from, m.unbindable) == (
        tags.get("shared"),
        tags.get("master"),
        tags.get("propagate_from"),
        bool(tags.get("unbindable")),
    )


@FUZZ
@given(
    st.sampled_from(["utf-8", "ascii", "latin-1", "shift_jis", "gb18030", "big5", "euc_jp"]),
    no_nul,
    no_nul,
    no_nul,
    st.lists(option, min_size=1, max_size=4),
)
def test_names_decode_as_the_file_system_encoding_does_whatever_it_is(
    encoding: str, root: bytes, point: bytes, source: bytes, super_options: List[bytes]
) -> None:
    # In Shift_JIS, Big5 and GB18030 a backslash byte may end a character (0x83 0x5C is one):
    # the escapes must be decoded on the bytes before the names are.
    line = b"20 1 0:19 %s %s rw - fuse.x %s %s\n" % (
        kernel_escape(root, PATH_SPECIAL),
        kernel_escape(point, PATH_SPECIAL),
        kernel_escape(source, FIELD_SPECIAL),
        b",".join(kernel_escape(o, OPTION_SPECIAL) for o in super_options),
    )
    saved = mountinfo._CODEC
    mountinfo._CODEC = mountinfo._Codec(encoding, "surrogateescape")
    try:
        [m] = mountprobe.parse_mountinfo(line, strict=True)
        at = mountinfo.find_at(line, point)
        split = mountinfo.split_options(b",".join(super_options))
    finally:
        mountinfo._CODEC = saved

    def text(raw: bytes) -> str:
        return raw.decode(encoding, "surrogateescape")

    assert (m.root, m.mountpoint, m.source) == (text(root), text(point), text(source))
    assert list(m.super_options) == [text(o) for o in super_options]
    assert at == [m]
    assert list(split) == [text(mountinfo.unescape(o)) for o in b",".join(super_options).split(b",") if o]


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            ["\\", "\\040", "\\011", "\\012", "\\134", "\\043", "\\377", "\\1", "0", "4", "x", "é", "\udcff"]
        ),
        max_size=12,
    )
)
def test_unescaping_decoded_text_equals_unescaping_the_bytes(pieces: List[str]) -> None:
    text = "".join(pieces)
    raw = text.encode("utf-8", "surrogateescape")
    assert mountinfo._unescape_text(text) == mountinfo.unescape(raw).decode("utf-8", "surrogateescape")


def split_quoted_bytewise(raw: str) -> List[str]:
    """The reference: a comma splits unless an odd number of quotes precede it."""
    items: List[str] = []
    start, quoted = 0, False
    for i, char in enumerate(raw):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(raw[start:i])
            start = i + 1
    items.append(raw[start:])
    return [item for item in items if item]


@FUZZ
@given(st.lists(st.sampled_from(['"', ",", "a", "=", "\\040", 'context="s0:c1,c2"', ",,"]), max_size=14))
def test_quoted_super_options_split_only_on_commas_outside_quotes(pieces: List[str]) -> None:
    raw = "".join(pieces)
    expected = [item.replace("\\040", " ") for item in split_quoted_bytewise(raw)]
    assert list(mountinfo.split_options(raw.encode())) == expected
    [m] = mountprobe.parse_mountinfo(b"20 1 0:19 / /m rw - tmpfs tmpfs " + raw.encode() + b"\n")
    assert list(m.super_options) == expected
