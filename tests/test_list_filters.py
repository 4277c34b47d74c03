"""``list_mounts(source=, fstype=, root=)`` and ``mounts_under(source=, fstype=)`` keep what
the unfiltered answer holds and the condition selects, on real mounts, at every strategy
level (older kernels and sandboxes simulated with seccomp), and through the statmount path
(taken where slave mounts are found) as well as the mountinfo one. ``mountinfo.sift`` keeps
every line a parse-then-filter keeps, names with escapes included."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from _ns import MS_SHARED, MS_SLAVE, bind, isolated, mount, propagation, tmpfs
from _scenes import NASTY_NAMES, build
from _seccomp import fail_syscalls
from test_fallback_chain import LEVELS, ONLY_WITH_FLAG

import mountprobe
from mountprobe import mountinfo, probe

Query = Dict[str, Any]


def _root_device() -> Optional[bytes]:
    """The block device node of the filesystem holding "/", where /dev has one."""
    dev = os.stat("/").st_dev
    try:
        with open(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/uevent") as f:
            name = dict(line.strip().split("=", 1) for line in f if "=" in line).get("DEVNAME")
    except OSError:
        return None
    if name is None:
        return None
    node = os.fsencode("/dev/" + name)
    try:
        st = os.stat(node)
    except OSError:
        return None
    return node if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev else None


def _scene(base: Path, slave: bool) -> Tuple[List[Tuple[Query, Callable[[mountprobe.Mount], bool]]], bytes]:
    """Mounts to filter, and each query with what it must keep, told independently of the
    library: by device number, source text, type and root."""
    tree = build(base)
    srcs = base / "sources"
    srcs.mkdir()
    for i, raw in enumerate(NASTY_NAMES):
        (srcs / str(i)).mkdir()
        mount(b"src " + raw + b"#", srcs / str(i), "tmpfs")
    (base / "usr").mkdir()
    bind("/usr", base / "usr")  # a bind of a directory of the filesystem holding "/"
    if slave:
        (base / "shared").mkdir()
        (base / "slave").mkdir()
        tmpfs(base / "shared", "sharedsrc")
        propagation(base / "shared", MS_SHARED)
        bind(base / "shared", base / "slave")
        propagation(base / "slave", MS_SLAVE)
    other = os.stat(tree.path("other"))
    src_dev = os.stat(tree.path("src"))
    queries: List[Tuple[Query, Callable[[mountprobe.Mount], bool]]] = [
        ({"fstype": "tmpfs"}, lambda m: m.fstype == "tmpfs"),
        ({"fstype": ("proc", "sysfs")}, lambda m: m.fstype in ("proc", "sysfs")),
        ({"fstype": "nosuchfs"}, lambda m: False),
        ({"root": "/"}, lambda m: m.root == "/"),
        ({"root": "/dir"}, lambda m: m.root == "/dir"),
        ({"source": "othersrc"}, lambda m: m.source == "othersrc"),
        ({"source": "othersrc", "root": "/"}, lambda m: m.source == "othersrc" and m.root == "/"),
        ({"source": "nasty", "fstype": "tmpfs"}, lambda m: m.source == "nasty"),
        ({"source": "no such source"}, lambda m: False),
        # a directory: bind mounts of exactly that directory
        (
            {"source": tree.path("other", "dir")},
            lambda m: (m.major, m.minor) == (os.major(other.st_dev), os.minor(other.st_dev)) and m.root == "/dir",
        ),
        (
            {"source": tree.path("src", "file")},
            lambda m: (
                (m.major, m.minor) == (os.major(src_dev.st_dev), os.minor(src_dev.st_dev))
                and m.root.endswith("/src/file")
            ),
        ),
    ]
    for raw in NASTY_NAMES:
        text = b"src " + raw + b"#"
        queries.append(({"source": text}, _source_is(text)))
    device = _root_device()
    if device is not None:
        dev = os.stat("/").st_dev
        on_root = (os.major(dev), os.minor(dev))
        queries.append(({"source": device}, lambda m: (m.major, m.minor) == on_root))
        queries.append(({"source": device, "root": "/"}, lambda m: (m.major, m.minor) == on_root and m.root == "/"))
        queries.append(
            ({"source": device, "root": "/usr"}, lambda m: (m.major, m.minor) == on_root and m.root == "/usr")
        )
    return queries, os.fsencode(base)


def _plain(mounts: List[mountprobe.Mount]) -> List[mountprobe.Mount]:
    return [m._replace(unique_id=None, parent_unique_id=None) for m in mounts]


_TOPS = (b"stack", b"deep/l1", b"names/sp ace", b"names/back\\slash", b"names/bad\xffbyte")


def _check(queries: List[Tuple[Query, Callable[[mountprobe.Mount], bool]]], base: bytes, ids: bool) -> None:
    whole = mountprobe.list_mounts()
    for query, selects in queries:
        found = mountprobe.list_mounts(**query)
        expected = [m for m in whole if selects(m)]
        if ids:  # unique ids proved for the filtered records as for the whole table
            assert found == expected, query
        else:
            assert _plain(found) == _plain(expected), query
        assert mountprobe.last_answer().question == "list_mounts(source=, fstype=, root=)"  # type: ignore[union-attr]
        if "root" not in query:
            # Below a plain directory, the mount point "/", a stack and mounts whose names
            # the kernel escapes or that are no UTF-8 (the mountinfo path compares raw bytes).
            for top in (base, b"/", *[base + b"/" + sub for sub in _TOPS]):
                whole_under = mountprobe.mounts_under(top, include_self=True)
                under = mountprobe.mounts_under(top, include_self=True, **query)
                assert mountprobe.last_answer().question == "mounts_under(source=, fstype=)"  # type: ignore[union-attr]
                assert under == [m for m in whole_under if selects(m)], (top, query)


@pytest.mark.parametrize("slave", [False, True], ids=["mountinfo-path", "statmount-path"])
@isolated
def test_filtered_lists_are_the_unfiltered_list_sifted(slave: bool, tmp_path: Path) -> None:
    queries, base = _scene(tmp_path, slave)
    _check(queries, base, ids=True)
    mountprobe.list_mounts(fstype="tmpfs")
    caps = mountprobe.capabilities()
    if caps.statmount_records and caps.listmount.usable and caps.statx_unique_id:
        expected = "statmount" if slave else "mountinfo"
        assert mountprobe.last_answer().strategy == expected  # type: ignore[union-attr]
    if _root_device() is None:
        pytest.skip("no block device node for the filesystem of / in /dev: the device queries were left out")


@pytest.mark.parametrize("level", [level for level in LEVELS if level != "full"])
@isolated
def test_filtered_lists_agree_at_every_strategy_level(level: str, tmp_path: Path) -> None:
    queries, base = _scene(tmp_path, slave=True)
    expected = {repr(q): _plain(mountprobe.list_mounts(**q)) for q, _ in queries}
    blocked, _ = LEVELS[level]
    fail_syscalls(blocked, ONLY_WITH_FLAG.get(level))
    probe.forget()
    _check(queries, base, ids=False)
    assert {repr(q): _plain(mountprobe.list_mounts(**q)) for q, _ in queries} == expected


@isolated
def test_is_mounted_root_tells_the_device_itself_from_a_bind_of_a_directory_on_it(tmp_path: Path) -> None:
    tree = build(tmp_path)
    assert mountprobe.is_mounted(tree.path("other"), source="othersrc", root="/")
    assert not mountprobe.is_mounted(tree.path("otherfs"), source="othersrc", root="/")
    assert mountprobe.is_mounted(tree.path("otherfs"), source="othersrc", root="/dir")
    device = _root_device()
    if device is None:
        pytest.skip("no block device node for the filesystem of / in /dev")
    (tmp_path / "usr").mkdir()
    bind("/usr", tmp_path / "usr")
    assert mountprobe.is_mounted("/", source=device, root="/")
    assert mountprobe.is_mounted(tmp_path / "usr", source=device)
    assert not mountprobe.is_mounted(tmp_path / "usr", source=device, root="/")
    assert [m.mountpoint for m in mountprobe.list_mounts(source=device, root="/")] == ["/"]


def test_bad_filters_are_errors() -> None:
    with pytest.raises(ValueError):
        mountprobe.list_mounts(root="relative")
    with pytest.raises(ValueError):
        mountprobe.list_mounts(fstype="")
    with pytest.raises(ValueError):
        mountprobe.list_mounts(source="")
    with pytest.raises(ValueError):
        mountprobe.is_mounted("/", root="")


def _line(mnt_id: int, devno: bytes, root: bytes, point: bytes, fstype: bytes, source: bytes) -> bytes:
    return b"%d 1 %s %s %s rw,relatime shared:1 - %s %s rw" % (mnt_id, devno, root, point, fstype, source)


def test_sift_keeps_every_line_that_parse_then_filter_keeps() -> None:
    names = [b"plain", *NASTY_NAMES, b"trailing/", b"/dev/sda1"]
    lines = []
    for i, name in enumerate(names):
        esc = mountinfo.escape(name)
        hashed = esc.replace(b"#", b"\\043")
        for j, source in enumerate((esc, hashed, esc + b"/")):
            point = mountinfo.escape(b"/m/" + name + b"%d" % j)
            root = b"/" if j else mountinfo.escape(b"/" + name)
            lines.append(_line(100 + 3 * i + j, b"8:%d" % i, root, point, b"fuse.x" if j == 2 else b"tmpfs", source))
    lines.insert(5, b"garbage line")
    data = b"\n".join(lines) + b"\n"
    with pytest.warns(mountprobe.ParseWarning):
        table = mountinfo.parse_mountinfo(data)
    conditions: List[Tuple[Dict[str, Any], Callable[[mountprobe.Mount], bool]]] = [
        ({"fstypes": [b"fuse"]}, lambda m: m.fstype.partition(".")[0] == "fuse"),
        ({"fstypes": [b"tmpfs"], "root": b"/"}, lambda m: m.fstype == "tmpfs" and m.root == "/"),
        ({"devnos": [(8, 3)]}, lambda m: (m.major, m.minor) == (8, 3)),
    ]
    for name in names:
        text = os.fsdecode(name)
        conditions.append(({"source": name}, _source_text_is(text)))
        conditions.append(({"root": b"/" + name}, _root_is("/" + text)))
    for kwargs, selects in conditions:
        kept, numbers = mountinfo.sift(data, **kwargs)
        with pytest.warns(mountprobe.ParseWarning) if b"garbage" in kept else _no_warning():
            sifted = mountinfo.parse_mountinfo(kept)
        assert [m for m in sifted if selects(m)] == [m for m in table if selects(m)], kwargs
        assert [data.split(b"\n")[n] for n in numbers] == kept.split(b"\n") if kept else not numbers


class _no_warning:
    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc: Any) -> None:
        self._catch.__exit__(*exc)


def _source_is(text: bytes) -> Callable[[mountprobe.Mount], bool]:
    return lambda m: m.source is not None and os.fsencode(m.source) == text


def _source_text_is(t: str) -> Callable[[mountprobe.Mount], bool]:
    return lambda m: m.source in (t, t.rstrip("/"), t.rstrip("/") + "/")


def _root_is(root: str) -> Callable[[mountprobe.Mount], bool]:
    return lambda m: m.root == root


@isolated
def test_filters_in_another_namespace_named_by_ns_or_pid_agree(tmp_path: Path) -> None:
    queries, _ = _scene(tmp_path, slave=False)
    for query, selects in queries:
        for where in ({"ns": "/proc/self/ns/mnt"}, {"pid": os.getpid()}):
            found = mountprobe.list_mounts(**query, **where)
            assert _plain(found) == _plain([m for m in mountprobe.list_mounts(**where) if selects(m)]), (query, where)
            assert _plain(found) == _plain(mountprobe.list_mounts(**query)), (query, where)


def test_an_fstype_of_the_wrong_type_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"fstype takes .* not int"):
        mountprobe.list_mounts(fstype=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fstype takes"):
        mountprobe.list_mounts(fstype=[])
