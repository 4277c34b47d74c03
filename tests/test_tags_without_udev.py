"""LABEL=/UUID=/PARTUUID=/PARTLABEL= sources where udev made no /dev/disk/by-* link
(containers, minimal hosts): mountprobe reads the mount's own device as libblkid does, and
answers as findmnt and ``blkid -p`` do on the same device, or raises an error that names the
tag and the device, never a silent False.

The readers are compared with ``blkid -p`` first on image files (any user: mkfs writes a
file, blkid probes it), then on real mounts of loop devices in a private mount namespace
with /dev/disk hidden (real root: loop devices). Every loop device is attached with
autoclear (``mount -o loop``, or LOOP_CONFIGURE here for a partitioned one): it is detached
as soon as neither a mount nor an open descriptor holds it, so whatever way a test ends,
the end of its namespace frees it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import _seccomp
import pytest
from _ns import bind, isolated, need_real_root, tmpfs
from _seccomp import fail_syscalls

import mountprobe
from mountprobe import _superblock
from mountprobe.errors import Unsupported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# preadv2, to take RWF_NOWAIT away as a kernel without it for block devices would.
_seccomp.NUMBERS.setdefault("preadv2", {"x86_64": 327, "aarch64": 286}.get(os.uname().machine, -1))
_seccomp.NUMBERS.setdefault("pread64", {"x86_64": 17, "aarch64": 67}.get(os.uname().machine, -1))


# The tools live in /usr/sbin, which an unprivileged user's PATH may lack.
SEARCH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool, path=SEARCH) is None:
            pytest.skip(f"{tool} is not installed")


def run(argv: List[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run of ``argv``, its program looked for in ``SEARCH``."""
    program = shutil.which(argv[0], path=SEARCH) or argv[0]
    done: subprocess.CompletedProcess[bytes] = subprocess.run([program, *argv[1:]], **kwargs)
    return done


def need_fs(fstype: str) -> None:
    with open("/proc/filesystems") as f:
        if fstype not in f.read().split():
            pytest.skip(f"this kernel cannot mount {fstype} (not in /proc/filesystems, no module loaded for it)")


def blkid(device: str) -> Dict[str, str]:
    """What ``blkid -p`` says of ``device``, partition entries under the tag names
    (PARTUUID, PARTLABEL) that mount(8) and udev give them; values as ``-o value`` prints
    them (unescaped)."""
    done = run(["blkid", "-p", "-o", "export", device], capture_output=True, check=False)
    found: Dict[str, str] = {}
    for line in done.stdout.decode().splitlines():
        key = line.partition("=")[0]
        value = run(["blkid", "-p", "-o", "value", "-s", key, device], capture_output=True, check=True).stdout.decode()
        found[{"PART_ENTRY_UUID": "PARTUUID", "PART_ENTRY_NAME": "PARTLABEL"}.get(key, key)] = value.rstrip("\n")
    return found


def image(path: Path, mib: int) -> str:
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return str(path)


def read_file(path: str, fstype: str) -> Dict[str, str]:
    """``_superblock.filesystem_tags`` of an image file (the reader reads any descriptor)."""
    with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
        return {k.decode(): v.decode() for k, v in _superblock.filesystem_tags(dev, fstype).items()}


def tags_of(found: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in found.items() if k in ("LABEL", "UUID")}


# -- the readers against blkid -p, on image files ------------------------------------------

MKFS = {
    "ext4": (["mkfs.ext4", "-q", "-F", "-L", "{label}"], 16, "Ext-Label 1"),
    "ext2": (["mkfs.ext2", "-q", "-F", "-L", "{label}"], 16, "e2"),
    "xfs": (["mkfs.xfs", "-q", "-f", "-L", "{label}"], 320, "xfs lbl"),
    "btrfs": (["mkfs.btrfs", "-q", "-f", "-L", "{label}"], 128, "btrfs label ü"),
    "vfat-12": (["mkfs.vfat", "-F", "12", "-n", "{label}"], 4, "FAT12 LBL"),
    "vfat-16": (["mkfs.vfat", "-F", "16", "-n", "{label}"], 32, "FAT16"),
    "vfat-32": (["mkfs.vfat", "-F", "32", "-n", "{label}"], 64, "FAT32 X"),
}


@pytest.mark.parametrize("kind", list(MKFS))
def test_the_reader_gives_the_label_and_uuid_blkid_gives(kind: str, tmp_path: Path) -> None:
    argv, mib, label = MKFS[kind]
    need(argv[0], "blkid")
    path = image(tmp_path / "fs.img", mib)
    run([a.format(label=label) for a in argv] + [path], check=True, capture_output=True)
    seen = blkid(path)
    assert seen.get("LABEL") == label, seen
    assert tags_of(seen) == read_file(path, kind.partition("-")[0])


def test_vfat_uuid_is_the_serial_in_blkid_s_xxxx_xxxx_and_lowercase_uuids_elsewhere(tmp_path: Path) -> None:
    need("mkfs.vfat", "mkfs.ext4", "blkid")
    fat = image(tmp_path / "fat.img", 8)
    run(["mkfs.vfat", "-i", "0a1b2c3d", fat], check=True, capture_output=True)
    assert read_file(fat, "vfat") == {"UUID": "0A1B-2C3D"} == tags_of(blkid(fat))
    ext = image(tmp_path / "ext.img", 16)
    given = "8E1A0C2D-ABCD-4F00-9A3B-0123456789AB"
    run(["mkfs.ext4", "-q", "-F", "-U", given, ext], check=True)
    assert read_file(ext, "ext4") == {"UUID": given.lower()} == tags_of(blkid(ext))


def test_a_label_blkid_does_not_show_is_no_label_here(tmp_path: Path) -> None:
    """An ext4 without label and a FAT whose label is only in its boot sector (blkid's
    LABEL_FATBOOT, no LABEL: the root directory has no volume entry)."""
    need("mkfs.vfat", "mkfs.ext4", "blkid")
    ext = image(tmp_path / "ext.img", 16)
    run(["mkfs.ext4", "-q", "-F", ext], check=True)
    assert "LABEL" not in read_file(ext, "ext4") and "LABEL" not in blkid(ext)
    fat = image(tmp_path / "fat.img", 8)
    run(["mkfs.vfat", "-n", "BOOTONLY", fat], check=True, capture_output=True)
    with open(fat, "r+b") as f:  # blank the root directory's first entry, the volume label
        boot = f.read(512)
        sector, reserved, fats, fat_length = (
            int.from_bytes(boot[11:13], "little"),
            int.from_bytes(boot[14:16], "little"),
            boot[16],
            int.from_bytes(boot[22:24], "little"),
        )
        f.seek((reserved + fats * fat_length) * sector)
        assert f.read(11) == b"BOOTONLY   "
        f.seek((reserved + fats * fat_length) * sector)
        f.write(b"\0" * 32)
    seen = blkid(fat)
    assert seen.get("LABEL_FATBOOT") == "BOOTONLY" and "LABEL" not in seen, seen
    assert "LABEL" not in read_file(fat, "vfat")


def sfdisk_json(path: str) -> List[Dict[str, object]]:
    done = run(["sfdisk", "-J", path], capture_output=True, check=True)
    parts: List[Dict[str, object]] = json.loads(done.stdout)["partitiontable"]["partitions"]
    return parts


def test_gpt_entries_give_partuuid_and_partlabel_as_sfdisk_lists_them(tmp_path: Path) -> None:
    """Partition 2 lies before partition 1 on the disk: the entry is found by its start and
    size, as libblkid finds it. PARTLABEL is UTF-8 of the UTF-16 name, trailing blanks off."""
    need("sgdisk", "sfdisk")
    path = image(tmp_path / "gpt.img", 40)
    names = {1: "p one", 2: "données 2 "}
    run(
        ["sgdisk", "-n", "2:2048:+8M", "-c", f"2:{names[2]}", "-n", "1:0:+8M", "-c", f"1:{names[1]}", path],
        check=True,
        capture_output=True,
    )
    with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
        for number, part in enumerate(sfdisk_json(path), 1):
            assert isinstance(part["start"], int) and isinstance(part["size"], int)
            tags = _superblock.partition_tags(dev, 512, (40 << 20) // 512, part["start"], part["size"], number)
            assert tags == {
                b"PARTUUID": str(part["uuid"]).lower().encode(),
                b"PARTLABEL": names[number].rstrip().encode(),
            }


def test_an_mbr_gives_partuuid_as_signature_and_number(tmp_path: Path) -> None:
    need("sfdisk")
    path = image(tmp_path / "mbr.img", 40)
    table = "label: dos\nlabel-id: 0x0badcafe\n2048,8M\n,8M\n"
    run(["sfdisk", "-q", path], input=table.encode(), check=True, capture_output=True)
    with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
        tags = _superblock.partition_tags(dev, 512, (40 << 20) // 512, 18432, 16384, 2)
    assert tags == {b"PARTUUID": b"0badcafe-02"}


def test_a_corrupt_primary_gpt_header_is_read_from_the_backup(tmp_path: Path) -> None:
    need("sgdisk", "sfdisk")
    path = image(tmp_path / "gpt.img", 40)
    run(["sgdisk", "-n", "1:2048:+8M", "-c", "1:backup only", path], check=True, capture_output=True)
    part = sfdisk_json(path)[0]
    with open(path, "r+b") as f:
        f.seek(512 + 16)
        f.write(b"\xff\xff\xff\xff")  # the primary header's CRC
    with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
        tags = _superblock.partition_tags(dev, 512, (40 << 20) // 512, 2048, 16384, 1)
    assert tags == {b"PARTUUID": str(part["uuid"]).lower().encode(), b"PARTLABEL": b"backup only"}


# -- real mounts, /dev/disk hidden -----------------------------------------------------------


def hide_udev() -> None:
    """No /dev/disk/by-* links in this namespace (there may be none on the host either)."""
    if os.path.isdir("/dev/disk"):
        tmpfs("/dev/disk")


def findmnt_targets(source: str, tmp_path: Path) -> List[str]:
    """The mount points findmnt -S finds (libblkid's scan without udev links; its cache file
    in the test's scratch directory, not the host's)."""
    env = dict(os.environ, BLKID_FILE=str(tmp_path / "blkid.tab"))
    done = run(["findmnt", "-n", "-r", "-o", "TARGET", "-S", source], capture_output=True, env=env, check=False)
    return done.stdout.decode().split()


def loop_mount(image_path: str, target: Path, fstype: str) -> str:
    """``image_path`` mounted at ``target`` through an autoclear loop device: the device."""
    target.mkdir(exist_ok=True)
    done = run(["mount", "-t", fstype, "-o", "loop", image_path, str(target)], check=False)
    if done.returncode != 0:
        need_fs(fstype)  # a module the kernel could not load: skip, else the mount failed
        raise AssertionError(f"mount -t {fstype} -o loop {image_path} failed")
    return next(m.source for m in mountprobe.list_mounts() if m.mountpoint == str(target) and m.source)


def label_for(fstype: str) -> str:
    tag = secrets.token_hex(3)  # unique on the machine: findmnt's scan sees every device
    return f"MP{tag}".upper() if fstype == "vfat" else f"mp {tag}"


MOUNTED = {
    "ext4": (["mkfs.ext4", "-q", "-F", "-L"], 16),
    "xfs": (["mkfs.xfs", "-q", "-f", "-L"], 320),
    "btrfs": (["mkfs.btrfs", "-q", "-f", "-L"], 128),
    "vfat": (["mkfs.vfat", "-n"], 16),
}


@pytest.mark.parametrize("fstype", list(MOUNTED))
@isolated
def test_is_mounted_finds_label_and_uuid_without_udev_as_findmnt_does(fstype: str, tmp_path: Path) -> None:
    need_real_root()
    argv, mib = MOUNTED[fstype]
    need(argv[0], "blkid", "findmnt")
    hide_udev()
    label = label_for(fstype)
    path = image(tmp_path / "fs.img", mib)
    run([*argv, label, path], check=True, capture_output=True)
    target = tmp_path / "mnt"
    device = loop_mount(path, target, fstype)
    seen = blkid(device)
    assert seen["LABEL"] == label
    other = tmp_path / "other"
    other.mkdir()
    tmpfs(other)
    for source in (f"LABEL={label}", f"UUID={seen['UUID']}", f'LABEL="{label}"'):
        assert mountprobe.is_mounted(target, source=source) is True, source
        assert mountprobe.is_mounted(target, source=source, pid=os.getpid()) is True, source  # through its root
        assert mountprobe.is_mounted(other, source=source) is False, source
        assert findmnt_targets(source, tmp_path) == [str(target)], source
        listed = [m.mountpoint for m in mountprobe.list_mounts(source=source)]
        assert [p for p in listed if p.startswith(str(tmp_path))] == [str(target)], source
    for wrong in (f"LABEL={label}x", f"UUID={seen['UUID'].swapcase()}"):
        assert mountprobe.is_mounted(target, source=wrong) is False, wrong
        assert findmnt_targets(wrong, tmp_path) == [], wrong
    if fstype == "btrfs":  # UUID is the filesystem's fsid; UUID_SUB names the device, no tag
        assert seen["UUID_SUB"] != seen["UUID"]
        assert mountprobe.is_mounted(target, source=f"UUID={seen['UUID_SUB']}") is False
        assert findmnt_targets(f"UUID={seen['UUID_SUB']}", tmp_path) == []


@isolated
def test_an_unprivileged_user_gets_an_error_that_says_the_device_cannot_be_read(tmp_path: Path) -> None:
    need_real_root()
    need("mkfs.ext4")
    hide_udev()
    bind(tmp_path, "/srv")  # pytest's temporary directory is private to root
    path = image(Path("/srv/fs.img"), 16)
    run(["mkfs.ext4", "-q", "-F", "-L", "nobody-cannot", path], check=True)
    target = Path("/srv/mnt")
    device = loop_mount(path, target, "ext4")
    assert mountprobe.is_mounted(target, source="LABEL=nobody-cannot") is True  # loads every module
    assert mountprobe.is_mounted(target, source="PARTUUID=00000000-01") is False
    os.setgid(65534)
    os.setuid(65534)
    for source in ("LABEL=nobody-cannot", "UUID=00000000-0000-0000-0000-000000000000"):
        with pytest.raises(Unsupported) as raised:
            mountprobe.is_mounted(target, source=source)
        text = str(raised.value)
        assert source in text and device in text and "permission denied" in text, text
        assert "/dev/disk/by-" in text and str(target) in text, text
        assert isinstance(raised.value.__cause__, PermissionError)
        with pytest.raises(Unsupported) as raised:  # no readable device has it: no silent []
            mountprobe.list_mounts(source=source)
        assert source in str(raised.value)
    # What needs no device stays answered: a mount that has none, a source that is no tag.
    assert mountprobe.is_mounted("/srv", source="LABEL=nobody-cannot") is False
    assert mountprobe.is_mounted(target, source=device) is True
    assert [m.mountpoint for m in mountprobe.list_mounts(source=device)] == [str(target)]


@isolated
def test_a_character_device_or_fifo_named_as_source_is_not_read(tmp_path: Path) -> None:
    """A mount whose reported source is /dev/null or a FIFO (tmpfs takes any text): no
    device of its own, so no tag; nothing is opened (a FIFO would block an open for reading
    without O_NONBLOCK, a character device may act on open)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for name, source in (("at-null", "/dev/null"), ("at-fifo", str(fifo))):
        target = tmp_path / name
        target.mkdir()
        tmpfs(target, source)
        assert mountprobe.is_mounted(target, source="LABEL=anything") is False
    with pytest.raises(OSError) as raised:
        _superblock.open_device(b"/dev/null", (1, 3))
    assert "not a block device" in str(raised.value)


@isolated
def test_an_unknown_filesystem_type_on_a_block_device_is_an_error_not_false(tmp_path: Path) -> None:
    need_real_root()
    need("mkfs.ext4")
    hide_udev()
    path = image(tmp_path / "fs.img", 16)
    run(["mkfs.ext4", "-q", "-F", "-L", "typed", path], check=True)
    target = tmp_path / "mnt"
    loop_mount(path, target, "ext4")
    # The same device seen as a filesystem type the reader does not know.
    m = mountprobe.mount_at(target)
    assert m is not None
    from mountprobe import sources

    alien = m._replace(fstype="f2fs")
    with pytest.raises(Unsupported) as raised:
        sources.matches(alien, "LABEL=typed", None, mountprobe.mount_of)
    assert "f2fs" in str(raised.value) and "LABEL=typed" in str(raised.value)


@contextlib.contextmanager
def partitioned_loop(image_path: str) -> Iterator[str]:
    """``image_path`` on a free loop device with its partitions scanned (LOOP_CONFIGURE,
    Linux 5.8, with LO_FLAGS_PARTSCAN | LO_FLAGS_AUTOCLEAR): the device is detached as soon
    as neither this block's descriptor nor a mount of a partition holds it."""
    backing = os.open(image_path, os.O_RDWR | os.O_CLOEXEC)
    ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(20):  # another process may take the free device first: EBUSY
            number = fcntl.ioctl(ctl, 0x4C82)  # LOOP_CTL_GET_FREE
            dev = os.open(f"/dev/loop{number}", os.O_RDWR | os.O_CLOEXEC)
            # struct loop_config: fd, block_size, loop_info64 (lo_flags at 52), reserved.
            info = bytearray(232)
            struct.pack_into("=I", info, 52, 4 | 8)
            try:
                fcntl.ioctl(dev, 0x4C0A, struct.pack("=II", backing, 0) + bytes(info) + bytes(64))
                break
            except OSError:
                os.close(dev)
        else:
            pytest.fail("no free loop device could be configured")
        try:
            if not os.path.exists(f"/sys/block/loop{number}/loop{number}p1"):
                pytest.skip("this kernel finds no partitions on a loop device (no GPT or MBR parser built in)")
            yield f"/dev/loop{number}"
        finally:
            os.close(dev)
    finally:
        os.close(ctl)
        os.close(backing)


@isolated
def test_partuuid_and_partlabel_of_a_gpt_partition_without_udev_as_blkid_and_findmnt(tmp_path: Path) -> None:
    need_real_root()
    need("sgdisk", "mkfs.ext4", "blkid", "findmnt")
    hide_udev()
    path = image(tmp_path / "disk.img", 40)
    name = f"part {secrets.token_hex(3)}"
    run(
        ["sgdisk", "-n", "2:2048:+8M", "-c", "2:first on disk", "-n", "1:0:+16M", "-c", f"1:{name}", path],
        check=True,
        capture_output=True,
    )
    target = tmp_path / "mnt"
    target.mkdir()
    with partitioned_loop(path) as disk:
        part = f"{disk}p1"
        run(["mkfs.ext4", "-q", "-F", "-L", name[:16], part], check=True)
        run(["mount", part, str(target)], check=True)
    seen = blkid(part)
    assert seen["PARTLABEL"] == name
    for source in (f"PARTUUID={seen['PARTUUID']}", f"PARTLABEL={name}", f"LABEL={name[:16]}", f"UUID={seen['UUID']}"):
        assert mountprobe.is_mounted(target, source=source) is True, source
        assert findmnt_targets(source, tmp_path) == [str(target)], source
        listed = [m.mountpoint for m in mountprobe.list_mounts(source=source)]
        assert [p for p in listed if p.startswith(str(tmp_path))] == [str(target)], source
    for wrong in ("PARTLABEL=first on disk", f"PARTUUID={blkid(disk + 'p2')['PARTUUID']}"):
        assert mountprobe.is_mounted(target, source=wrong) is False, wrong
        assert findmnt_targets(wrong, tmp_path) == [], wrong


@isolated
def test_partuuid_of_an_mbr_partition_without_udev_as_blkid_and_findmnt(tmp_path: Path) -> None:
    need_real_root()
    need("sfdisk", "mkfs.ext4", "blkid", "findmnt")
    hide_udev()
    path = image(tmp_path / "disk.img", 40)
    signature = secrets.token_hex(4)
    table = f"label: dos\nlabel-id: 0x{signature}\n2048,8M\n,16M\n"
    run(["sfdisk", "-q", path], input=table.encode(), check=True, capture_output=True)
    target = tmp_path / "mnt"
    target.mkdir()
    with partitioned_loop(path) as disk:
        run(["mkfs.ext4", "-q", "-F", f"{disk}p2"], check=True)
        run(["mount", f"{disk}p2", str(target)], check=True)
    assert blkid(f"{disk}p2")["PARTUUID"] == f"{signature}-02"
    assert mountprobe.is_mounted(target, source=f"PARTUUID={signature}-02") is True
    assert findmnt_targets(f"PARTUUID={signature}-02", tmp_path) == [str(target)]
    assert mountprobe.is_mounted(target, source=f"PARTUUID={signature}-01") is False
    assert mountprobe.is_mounted(target, source="PARTLABEL=anything") is False  # MBR: none


@isolated
def test_without_rwf_nowait_for_block_devices_the_tag_is_still_read(tmp_path: Path) -> None:
    """A kernel that refuses RWF_NOWAIT on a block device (EOPNOTSUPP): a plain read."""
    need_real_root()
    need("mkfs.ext4")
    hide_udev()
    path = image(tmp_path / "fs.img", 16)
    run(["mkfs.ext4", "-q", "-F", "-L", "plainread", path], check=True)
    target = tmp_path / "mnt"
    loop_mount(path, target, "ext4")
    assert mountprobe.is_mounted(target, source="LABEL=plainread") is True
    fail_syscalls({"preadv2": 95})  # EOPNOTSUPP
    assert mountprobe.is_mounted(target, source="LABEL=plainread") is True
    assert mountprobe.is_mounted(target, source="LABEL=other") is False


def never_answer(name: str) -> int:
    """Every call of syscall ``name`` by this process waits for a seccomp supervisor that
    never answers (the listener's fd, returned, is kept open and never read): a device whose
    I/O never completes, as the caller sees it. Other calls run."""
    prog = [*_seccomp._prologue(), *_seccomp._rule(name, _seccomp._RET_USER_NOTIF)]
    return _seccomp._install([*prog, _seccomp._insn(_seccomp._RET, 0, 0, _seccomp._ALLOW)], _seccomp._FLAG_NEW_LISTENER)


@isolated
def test_a_device_that_never_answers_is_an_error_within_the_wait_not_a_hang(tmp_path: Path) -> None:
    """What the page cache lacks (RWF_NOWAIT: EAGAIN) is read from a device that never
    answers (pread64 never returns): the wait ends with an error naming the device."""
    need_real_root()
    need("mkfs.xfs")
    hide_udev()
    path = image(tmp_path / "fs.img", 320)
    run(["mkfs.xfs", "-q", "-f", "-L", "never", path], check=True)
    target = tmp_path / "mnt"
    device = loop_mount(path, target, "xfs")
    assert mountprobe.is_mounted(target, source="LABEL=never") is True
    _superblock.WAIT = 0.5
    fail_syscalls({"preadv2": 11})  # EAGAIN: not cached
    never_answer("pread64")
    with pytest.raises(Unsupported) as raised:
        mountprobe.is_mounted(target, source="LABEL=never")
    assert device in str(raised.value) and "did not answer within 0.5 s" in str(raised.value), raised.value
    assert isinstance(raised.value.__cause__, TimeoutError)


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "mountprobe", *args], capture_output=True, cwd=ROOT, check=False)


@isolated
def test_cli_find_with_source_label_without_udev_as_findmnt(tmp_path: Path) -> None:
    need_real_root()
    need("mkfs.ext4", "findmnt")
    if b"-S" not in _cli("find", "--help").stdout:
        pytest.skip("the CLI has no -S/--source filter yet (issue 19, item 4)")
    hide_udev()
    label = label_for("ext4")
    path = image(tmp_path / "fs.img", 16)
    run(["mkfs.ext4", "-q", "-F", "-L", label, path], check=True)
    target = tmp_path / "mnt"
    loop_mount(path, target, "ext4")
    done = _cli("find", "-S", f"LABEL={label}", str(target))
    assert done.returncode == 0, done.stderr
    assert str(target).encode() in done.stdout
    assert findmnt_targets(f"LABEL={label}", tmp_path) == [str(target)]


@isolated
def test_a_btrfs_mount_comes_from_its_device_node_as_findmnt_says(tmp_path: Path) -> None:
    """btrfs gives its mounts an anonymous device number (0:N), not the block device's: the
    device node (and a udev link to it) is matched through the source the kernel reports."""
    need_real_root()
    need("mkfs.btrfs", "mkfs.ext4", "findmnt")
    path = image(tmp_path / "fs.img", 128)
    run(["mkfs.btrfs", "-q", "-f", path], check=True, capture_output=True)
    target = tmp_path / "mnt"
    device = loop_mount(path, target, "btrfs")
    m = mountprobe.mount_at(target)
    assert m is not None and m.major == 0
    assert findmnt_targets(device, tmp_path) == [str(target)]
    assert mountprobe.is_mounted(target, source=device) is True
    ext = image(tmp_path / "ext.img", 16)
    run(["mkfs.ext4", "-q", "-F", ext], check=True)
    ext_device = loop_mount(ext, tmp_path / "ext", "ext4")
    assert mountprobe.is_mounted(target, source=ext_device) is False
    assert mountprobe.is_mounted(tmp_path / "ext", source=device) is False


def test_preload_loads_the_reader_and_import_mountprobe_does_not() -> None:
    """After preload() a process that loses its files (chroot, setuid) still reads tags;
    ``import mountprobe`` alone never loads the reader."""
    code = (
        "import sys, mountprobe; before = 'mountprobe._superblock' in sys.modules; "
        "mountprobe.preload(); print(before, 'mountprobe._superblock' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=True)
    assert done.stdout.split() == [b"False", b"True"]


@pytest.mark.parametrize("kind", ["ext4", "xfs", "btrfs", "vfat-16", "vfat-32", "gpt"])
def test_a_damaged_superblock_or_table_is_a_valueerror_or_no_tag_never_another_exception(
    kind: str, tmp_path: Path
) -> None:
    """Bytes of the headers read here (the first 2 KiB: boot sector, ext and xfs superblocks,
    MBR, GPT header and first entries; 1 KiB at 64 KiB: btrfs) overwritten at random, 200
    times: what comes back is a dict of tags or ValueError."""
    import random

    if kind == "gpt":
        need("sgdisk")
        path = image(tmp_path / "disk.img", 40)
        run(["sgdisk", "-n", "1:2048:+8M", "-c", "1:x", path], check=True, capture_output=True)
    else:
        argv, mib, label = MKFS[kind]
        need(argv[0])
        path = image(tmp_path / "fs.img", mib)
        run([a.format(label=label) for a in argv] + [path], check=True, capture_output=True)
    with open(path, "rb") as f:
        pristine = f.read(0x11000)
    rng = random.Random(f"tags-{kind}")
    for _ in range(200):
        damaged = bytearray(pristine)
        for _ in range(rng.randint(1, 12)):
            start, end = rng.choice(((0, 2048), (0x10000, 0x10400)))
            damaged[rng.randrange(start, end)] = rng.randrange(256)
        with open(path, "r+b") as f:
            f.write(damaged)
        with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
            try:
                if kind == "gpt":
                    found = _superblock.partition_tags(dev, 512, (40 << 20) // 512, 2048, 16384, 1)
                else:
                    found = _superblock.filesystem_tags(dev, kind.partition("-")[0])
            except ValueError:
                continue
        assert isinstance(found, dict) and all(isinstance(v, bytes) and v for v in found.values())


def _cut_short(fstype: str) -> bytes:
    """The start of a device that ends inside its superblock, just past the magic."""
    if fstype == "ext4":
        return bytes(0x438) + b"\x53\xef"
    if fstype == "xfs":
        return b"XFSB" + bytes(60)
    if fstype == "btrfs":
        return bytes(0x10040) + b"_BHRfS_M"
    boot = bytearray(0x18)  # FAT16: 512-byte sectors, 1 per cluster, 1 reserved, 2 FATs of 1
    boot[0x0B:0x0D], boot[0x0D], boot[0x0E:0x10], boot[0x10], boot[0x16:0x18] = b"\0\2", 1, b"\1\0", 2, b"\1\0"
    return bytes(boot)


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "vfat"])
def test_a_device_that_ends_inside_its_superblock_is_a_valueerror(fstype: str, tmp_path: Path) -> None:
    path = str(tmp_path / "short.img")
    with open(path, "wb") as f:
        f.write(_cut_short(fstype))
    with _superblock.Device(os.open(path, os.O_RDONLY | os.O_CLOEXEC), path) as dev:
        with pytest.raises(ValueError):
            _superblock.filesystem_tags(dev, fstype)
        with pytest.raises(ValueError):
            _superblock.partition_tags(dev, 512, 1, 0, 1, 1)
