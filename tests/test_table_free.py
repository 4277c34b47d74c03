"""The questions that need no record never read the mount table (issue 20): ``mount_root``,
``is_mounted`` (a device, a bind of a directory, the type), ``still_mounted``,
``is_mountpoint(bind=False)``, on each kernel level where the kernel proves their answer.

An audit hook counts the opens of ``*/mountinfo`` (in the forked child of ``@isolated``:
audit hooks cannot be removed). Older kernels are simulated with seccomp, each level as the
real kernel behaves (checked in the 6.1 and 6.12 guests of scripts/vm-test.sh): before 6.15
statmount knows no ``supported_mask`` nor the fields after 6.12 (fs subtype, source), before
6.8 there is no statmount, no listmount and statx ignores ``STATX_MNT_ID_UNIQUE``. Every
answer equals the one read from the live mountinfo by the independent reader of
tests/_oracle.py."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import _oracle
import pytest
from _ns import isolated, need_real_root, tmpfs, umount
from _scenes import Tree, build
from _seccomp import NUMBERS, _hand_over, _supervise, fail_syscalls, statx_without_unique_ids

import mountprobe
from mountprobe import probe
from mountprobe.errors import OutsideRoot

# statmount request bits a kernel before 6.15 does not know: SUPPORTED_MASK, UIDMAP and
# GIDMAP (6.15), and those 6.12 lacks: FS_SUBTYPE, SB_SOURCE, OPT_ARRAY, OPT_SEC_ARRAY (6.13).
_AFTER_6_12 = 0x1000 | 0x2000 | 0x4000 | 0x100 | 0x200 | 0x400 | 0x800


def statmount_without(bits: int) -> Callable[[], None]:
    """A simulation: from now on, in this thread, statmount answers as a kernel that knows
    none of the request ``bits``: they are left out of the reply (no error), as the real
    6.12 does with SUPPORTED_MASK."""

    def simulate() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long

        def unknown_bits_left_out(_nr: int, _flags: int, args: Tuple[int, ...]) -> object:
            req, buf, size, flags = args[:4]
            (length,) = struct.unpack("=I", ctypes.string_at(req, 4))
            raw = bytearray(ctypes.string_at(req, length))
            (param,) = struct.unpack_from("=Q", raw, 16)
            struct.pack_into("=Q", raw, 16, param & ~bits)
            copy = ctypes.create_string_buffer(bytes(raw), length)
            result = libc.syscall(
                NUMBERS["statmount"], copy, ctypes.c_void_p(buf), ctypes.c_size_t(size), ctypes.c_uint(flags)
            )
            if result < 0:
                return -ctypes.get_errno()
            _empty_mount_point(buf, size, param)
            return result

        _supervise(_hand_over("statmount"), unknown_bits_left_out)

    return simulate


_MNT_POINT = 0x10


def _empty_mount_point(buf: int, size: int, param: int) -> None:
    """Asked for MNT_POINT of a mount outside the root, 6.12 sets the bit with an empty string
    (measured in the real 6.12.117 guest; 6.18 leaves the bit clear): the reply made so."""
    used, _, mask = struct.unpack_from("=IIQ", ctypes.string_at(buf, 16))
    if not param & _MNT_POINT or mask & _MNT_POINT or used >= size:
        return
    ctypes.memset(buf + used, 0, 1)
    ctypes.memmove(buf + 108, struct.pack("=I", used - 512), 4)  # mnt_point: offset into the strings
    ctypes.memmove(buf, struct.pack("=I", used + 1), 4)
    ctypes.memmove(buf + 8, struct.pack("=Q", mask | _MNT_POINT), 8)


statmount_of_6_12 = statmount_without(_AFTER_6_12)
# 6.13-6.14: the fields of a whole record, and no supported_mask yet.
statmount_of_6_14 = statmount_without(0x1000 | 0x2000 | 0x4000)


def kernel_before_6_8() -> None:
    """Linux 5.8-6.7 (as 6.1 measured): no statmount nor listmount, statx ignores the unique-id
    bit, name_to_handle_at knows neither AT_HANDLE_FID (6.5) nor AT_HANDLE_MNT_ID_UNIQUE."""
    fail_syscalls(
        {"statmount": errno.ENOSYS, "listmount": errno.ENOSYS, "name_to_handle_at": errno.EINVAL},
        {"name_to_handle_at": 0x200 | 0x001},
    )
    statx_without_unique_ids()


# level -> (how to simulate it on a newer kernel, the first kernel of the level)
LEVELS: Dict[str, Tuple[Optional[Callable[[], None]], Tuple[int, int]]] = {
    "6.15+": (None, (6, 15)),
    "6.8-6.14": (statmount_of_6_12, (6, 8)),
    "5.8-6.7": (kernel_before_6_8, (5, 8)),
}


def _release() -> Tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _enter(level: str) -> None:
    """Make this process a kernel of ``level``: simulated on a newer kernel, as it is on the
    kernel of that level, skipped on an older one."""
    simulate, first = LEVELS[level]
    if _release() < first:
        pytest.skip(f"level {level} needs Linux {first[0]}.{first[1]} (this is {os.uname().release})")
    if simulate is not None and not _level_of_this_kernel(level):
        simulate()
    probe.forget()
    caps = mountprobe.capabilities()
    assert caps.statx_mount_root and caps.statx_mnt_id, caps.statx
    assert caps.statx_unique_id == (first >= (6, 8)), caps.statx
    assert caps.statmount_records == (first >= (6, 15)), caps.statmount


def _level_of_this_kernel(level: str) -> bool:
    """Is ``level`` the one this kernel belongs to (the newest whose first kernel it is)?"""
    here = _release()
    mine = max((first, name) for name, (_, first) in LEVELS.items() if here >= first)
    return mine[1] == level


class TableReads:
    """Counts the opens of a ``mountinfo`` file while ``counting``: an audit hook, which no
    one can remove, so only ever added in a forked child."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: List[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: Tuple[Any, ...]) -> None:
        if self.counting and event == "open" and isinstance(args[0], (str, bytes)):
            name = os.fsdecode(args[0])
            if name.endswith("/mountinfo"):
                self.seen.append(name)

    def during(self, question: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.counting = True
        try:
            return question(*args, **kwargs)
        finally:
            self.counting = False


def _canonical(path: bytes) -> str:
    return os.fsdecode(os.path.realpath(path))


def _oracle_mount_root(path: bytes) -> str:
    return str(_oracle.by_id()[_oracle.fdinfo_mount_id(path)].mountpoint)


def _oracle_is_mounted(path: bytes, fstype: Optional[str] = None, source: Optional[bytes] = None) -> bool:
    at = _oracle.visible_at(_canonical(path))
    if at is None or (fstype is not None and fstype not in (at.fstype, at.fstype.partition(".")[0])):
        return False
    if source is None:
        return True
    st = os.stat(source)
    if stat.S_ISBLK(st.st_mode):
        return (os.major(st.st_rdev), os.minor(st.st_rdev)) == (at.major, at.minor)
    holder = _oracle.by_id()[_oracle.fdinfo_mount_id(source)]
    rel = _canonical(source)[len(holder.mountpoint.rstrip("/")) :]
    root = (holder.root.rstrip("/") + rel) or "/"
    return bool((holder.major, holder.minor) == (at.major, at.minor) and at.root == root)


def _oracle_differs(path: bytes) -> bool:
    at = _oracle.visible_at(_canonical(path))
    if at is None:
        return False
    parent = _oracle.by_id().get(at.parent_id)
    return parent is None or parent.id == at.id or (parent.major, parent.minor) != (at.major, at.minor)


def _paths(tree: Tree) -> List[bytes]:
    return [*tree.every_path, tree.path("link"), tree.path("tmpfs", "inner"), b"/", b"/proc", b"/proc/self"]


def _bind_sources(tree: Tree) -> List[Tuple[bytes, bytes]]:
    """(target, source directory) pairs, binds and not."""
    return [
        (tree.path("samefs"), tree.path("src")),
        (tree.path("samefs"), tree.path("src", "sub")),
        (tree.path("otherfs"), tree.path("other", "dir")),
        (tree.path("otherfs"), tree.path("other")),
        (tree.path("self"), tree.path("self")),
        (tree.path("tmpfs"), tree.path("src")),
        (tree.path("plain"), tree.path("src")),
    ]


def _check(level: str, tmp_path: Path, question: Callable[[Tree, TableReads], None], table_free: bool = True) -> None:
    tree = build(tmp_path)
    reads = TableReads()
    _enter(level)
    question(tree, reads)
    if table_free:
        assert reads.seen == [], f"read {reads.seen} on level {level}"


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_mount_root_never_reads_the_table(level: str, tmp_path: Path) -> None:
    def question(tree: Tree, reads: TableReads) -> None:
        paths = _paths(tree)
        expected = [_oracle_mount_root(p) for p in paths]
        assert [reads.during(mountprobe.mount_root, p) for p in paths] == expected

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_is_mounted_of_a_target_and_a_bind_source_never_reads_the_table(level: str, tmp_path: Path) -> None:
    def question(tree: Tree, reads: TableReads) -> None:
        paths = _paths(tree)
        expected = [_oracle_is_mounted(p) for p in paths]
        assert [reads.during(mountprobe.is_mounted, p) for p in paths] == expected
        pairs = _bind_sources(tree)
        expected = [_oracle_is_mounted(t, source=s) for t, s in pairs]
        assert expected[:5] == [True, False, True, False, True]
        assert [reads.during(mountprobe.is_mounted, t, source=s) for t, s in pairs] == expected

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_is_mounted_of_a_device_never_reads_the_table(level: str, tmp_path: Path) -> None:
    need_real_root()  # mknod of a block device node

    def question(tree: Tree, reads: TableReads) -> None:
        cases = []
        for name in ("tmpfs", "other", "a"):
            at = _oracle.visible_at(_canonical(tree.path(name)))
            assert at is not None
            node = tree.path(f"dev-{name}")
            os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(at.major, at.minor))
            cases += [(tree.path(name), node), (tree.path("samefs"), node), (tree.path("plain"), node)]
        expected = [_oracle_is_mounted(t, source=s) for t, s in cases]
        assert expected.count(True) == 3
        assert [reads.during(mountprobe.is_mounted, t, source=s) for t, s in cases] == expected

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", ["6.15+", "6.8-6.14"])
@isolated
def test_is_mounted_of_a_type_never_reads_the_table_with_statmount(level: str, tmp_path: Path) -> None:
    def question(tree: Tree, reads: TableReads) -> None:
        cases = [(p, t) for p in _paths(tree) for t in ("tmpfs", "proc", "ext4", "tmpfs.sub")]
        expected = [_oracle_is_mounted(p, fstype=t) for p, t in cases]
        assert [reads.during(mountprobe.is_mounted, p, fstype=t) for p, t in cases] == expected

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_is_mounted_where_the_kernel_cannot_prove_it_gives_the_records_answer(level: str, tmp_path: Path) -> None:
    # A source text needs statmount's SB_SOURCE, which 6.12 lacks; a file bind the name of
    # the bound link; a type before 6.8 statmount: these may read the table, with the same
    # answers.
    def question(tree: Tree, reads: TableReads) -> None:
        cases: List[Tuple[bytes, Dict[str, Any]]] = [
            (tree.path("other"), {"source": "othersrc"}),
            (tree.path("other"), {"source": "tmpfs"}),
            (tree.path("tmpfs"), {"source": "tmpfs", "fstype": "tmpfs"}),
            (tree.path("filebind"), {"source": tree.path("src", "file")}),
            (tree.path("filebind"), {"source": tree.path("src", "sub")}),
            (tree.path("plain"), {"fstype": "tmpfs"}),
        ]
        got = [mountprobe.is_mounted(p, **kw) for p, kw in cases]
        assert got == [True, False, True, True, False, False]

    _check(level, tmp_path, question, table_free=False)


@pytest.mark.parametrize("level", ["6.15+", "6.8-6.14"])
@isolated
def test_still_mounted_never_reads_the_table_with_statmount(level: str, tmp_path: Path) -> None:
    def question(tree: Tree, reads: TableReads) -> None:
        (tmp_path / "gone").mkdir()
        tmpfs(tmp_path / "gone", "gone")
        # As the seed asks after umount(2): of a record from mount_at, mount_of, list_mounts.
        mounts = [m for m in map(mountprobe.mount_at, tree.mounts.values()) if m is not None]
        mounts += [mountprobe.mount_of(tree.path("src", "file")), *mountprobe.list_mounts()]
        gone = mountprobe.mount_at(tmp_path / "gone")
        assert gone is not None and all(m.unique_id is not None for m in [*mounts, gone])
        umount(tmp_path / "gone")
        live = _oracle.by_id()
        expected = [m.id in live and live[m.id].mountpoint == m.mountpoint for m in mounts] + [False]
        answers = [reads.during(mountprobe.still_mounted, m) for m in [*mounts, gone]]
        assert answers == expected
        assert mountprobe.last_answer().strategy == "statmount"  # type: ignore[union-attr]

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_is_mountpoint_never_reads_the_table(level: str, tmp_path: Path) -> None:
    def question(tree: Tree, reads: TableReads) -> None:
        paths = _paths(tree)
        expected = [_oracle.visible_at(_canonical(p)) is not None or _canonical(p) == "/" for p in paths]
        assert [reads.during(mountprobe.is_mountpoint, p) for p in paths] == expected
        expected = [_oracle_differs(p) for p in paths]
        assert [reads.during(mountprobe.is_mountpoint, p, bind=False) for p in paths] == expected

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_mount_at_of_a_path_where_nothing_is_mounted_never_reads_the_table(level: str, tmp_path: Path) -> None:
    # statx says no mount root (5.8): None, without the table that records need before 6.15.
    def question(tree: Tree, reads: TableReads) -> None:
        plain = [p for p in _paths(tree) if _oracle.visible_at(_canonical(p)) is None and _canonical(p) != "/"]
        assert len(plain) >= 5
        assert [reads.during(mountprobe.mount_at, p) for p in plain] == [None] * len(plain)

    _check(level, tmp_path, question)


@pytest.mark.parametrize("level", LEVELS)
@isolated
def test_mount_root_in_a_chroot_is_the_tables_mount_point(level: str, tmp_path: Path) -> None:
    # A chroot to a mount root: paths and mount points are the chroot's. To a plain
    # directory: the mount holding it is described by neither mountinfo nor statmount.
    tree = build(tmp_path)
    (tmp_path / "jail").mkdir()
    tmpfs(tmp_path / "jail", "jail")
    (tmp_path / "jail" / "inner").mkdir()
    tmpfs(tmp_path / "jail" / "inner", "inner")
    (tmp_path / "jail" / "inner" / "d").mkdir()
    (tmp_path / "jail" / "plain").mkdir()
    del tree
    _enter(level)
    mountprobe.preload()
    reads = TableReads()
    os.chroot(tmp_path / "jail")
    os.chdir("/")
    for path, want in ((b"/", "/"), (b"/inner/d", "/inner"), (b"/plain", "/"), (b"inner", "/inner")):
        assert reads.during(mountprobe.mount_root, path) == want
    assert reads.seen == []
    os.chroot("/plain")
    with pytest.raises(OutsideRoot, match="chroot to a plain directory"):
        reads.during(mountprobe.mount_root, b"/")
    assert reads.seen == []
    if mountprobe.capabilities().statmount_records:  # elsewhere the table, absent here (no /proc)
        with pytest.raises(OutsideRoot, match="chroot to a plain directory"):
            mountprobe.mount_of(b"/")


@isolated
def test_records_come_from_statmount_before_6_15_where_replies_prove_the_fields(tmp_path: Path) -> None:
    # 6.13-6.14: no supported_mask, but a source and options seen set in the probe's reply
    # prove the kernel has them; a clear bit then means empty. Records equal mountinfo's.
    if (6, 8) <= _release() < (6, 13):
        pytest.skip(f"this kernel lacks statmount's SB_SOURCE (6.13): {os.uname().release}")
    if _release() < (6, 8):
        pytest.skip(f"needs statmount, Linux 6.8 (this is {os.uname().release})")
    tree = build(tmp_path)
    if _release() >= (6, 15):
        statmount_of_6_14()
    probe.forget()
    caps = mountprobe.capabilities()
    assert "supported_mask" not in caps.statmount.detail or "no supported_mask" in caps.statmount.detail
    if not caps.statmount_records:
        pytest.skip(f"the probe's reply for / proves no source or options here: {caps.statmount.detail}")
    for path in tree.every_path:
        m = mountprobe.mount_of(path)
        assert mountprobe.last_answer().strategy == "statmount"  # type: ignore[union-attr]
        _oracle.assert_is_kernel_entry(m)
    listed = mountprobe.mounts_under(tree.path())
    assert mountprobe.last_answer().strategy == "statmount"  # type: ignore[union-attr]
    for m in listed:
        _oracle.assert_is_kernel_entry(m)
    every = mountprobe.list_mounts()  # from statmount only where slave mounts make mountinfo dear
    assert {m.id: _oracle.without_unique_ids(m) for m in every} == {m.id: m for m in _plain_table()}


def _plain_table() -> List[mountprobe.Mount]:
    fields: List[Dict[str, Any]] = [{f: e.get(f) for f in mountprobe.Mount._fields} for e in _oracle.table()]
    return [mountprobe.Mount(**f) for f in fields]


def test_the_6_12_simulation_is_the_real_kernels_behaviour() -> None:
    # Measured in the real 6.12.117 guest: unknown request bits are left out of the reply.
    if not (6, 8) <= _release() < (6, 15):
        pytest.skip(f"checks a real 6.8-6.14 kernel (this is {os.uname().release})")
    caps = mountprobe.capabilities()
    assert not caps.statmount_records and caps.statmount.usable, caps.statmount
    from mountprobe.kernel import mount as k

    reply = k.statmount(_oracle.unique_id("/"), 0x7FFF)
    assert not reply.mask & _AFTER_6_12 & ~(0x100 | 0x200 | 0x400 | 0x800 if _release() >= (6, 13) else 0)
