"""parse_mountinfo against real mountinfo samples written by other projects (tests/data,
see NOTICE), asserting what each origin's own tests assert, translated to mountprobe's record.
Where mountprobe deliberately differs from an origin, the test says so and asserts ours."""

from __future__ import annotations

import base64
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import mountprobe
from mountprobe import mountinfo

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def parse(data: bytes) -> Tuple[List[mountprobe.Mount], List[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = mountprobe.parse_mountinfo(data)
    return found, [str(w.message) for w in caught if issubclass(w.category, mountprobe.ParseWarning)]


def moby_view(m: mountprobe.Mount) -> Dict[str, Any]:
    """moby/sys's Info fields from a Mount (moby keeps Optional and VFSOptions raw)."""
    tags = [f"shared:{m.shared}"] if m.shared is not None else []
    tags += [f"master:{m.master}"] if m.master is not None else []
    return {
        "ID": m.id,
        "Parent": m.parent_id,
        "Major": m.major,
        "Minor": m.minor,
        "Root": m.root,
        "Mountpoint": m.mountpoint,
        "Options": ",".join(m.options),
        "Optional": " ".join(tags),
        "FSType": m.fstype,
        "Source": m.source or "",
        "VFSOptions": ",".join(m.super_options),
    }


def lines_of(data: bytes) -> int:
    return sum(
        1 for line in data.replace(b"\r", b"").split(b"\n") if line.strip() and not line.lstrip().startswith(b"#")
    )


@pytest.mark.parametrize("path", sorted(DATA.rglob("*.mountinfo")), ids=lambda p: str(p.relative_to(DATA)))
def test_every_line_of_every_sample_is_a_record_or_a_warning_naming_it(path: Path) -> None:
    data = path.read_bytes()
    found, warned = parse(data)
    assert len(found) + len(warned) == lines_of(data)
    assert all("mountinfo line " in w for w in warned)


@pytest.mark.parametrize(
    "case", load("moby-sys/parse_expectations.json")["TestParseMountInfo"]["cases"], ids=lambda c: c["sample"]
)
def test_moby_sample_counts_and_first_entries(case: Dict[str, Any]) -> None:
    found, warned = parse((DATA / "moby-sys" / case["data_file"]).read_bytes())
    assert (len(found), warned) == (case["expected_entry_count"], [])
    assert moby_view(found[0]) == case["expected_first_entry"]


def test_moby_names_with_spaces_and_every_escape() -> None:
    spec = load("moby-sys/parse_expectations.json")["TestParseMountinfoWithSpaces"]
    found, _ = parse((DATA / "moby-sys" / spec["data_file"]).read_bytes())
    got = [moby_view(m) for m in found]
    want = spec["expected_entries"]
    # moby keeps cifs's super options only up to the first raw space; mountprobe keeps the
    # whole field (the spaces belong to unc=\\foo\BLA BLA BLA) and every option after it.
    assert got[1]["VFSOptions"].startswith(want[1]["VFSOptions"] + " BLA BLA,username=my_login")
    assert found[1].super_options[3] == "unc=\\\\foo\\BLA BLA BLA" and found[1].super_options[-1] == "actimeo=1"
    got[1]["VFSOptions"] = want[1]["VFSOptions"]
    assert got == want


def test_moby_filters() -> None:
    data = (DATA / "moby-sys" / "fedora.mountinfo").read_bytes()
    assert len(mountinfo.find_at(data, b"/sys/fs/cgroup")) == 1
    assert mountinfo.find_at(data, b"nonexistent") == []
    assert len(mountinfo.find_under(data, b"/sys", include_self=True)) == 18
    assert mountinfo.find_under(data, b"nonexistent", include_self=True) == []
    # ParentsFilter: moby compares plain string prefixes; these four are also component-wise.
    path = "/sys/fs/cgroup/cpu,cpuacct"
    parents = [m for m in parse(data)[0] if m.mountpoint == "/" or (path + "/").startswith(m.mountpoint + "/")]
    assert len(parents) == 4
    assert len(mountinfo.find_by_fstype(data, ("pstore",))) == 1
    assert len(mountinfo.find_by_fstype(data, ("proc", "sysfs"))) == 2


@pytest.mark.parametrize(
    "case", load("moby-sys/parse_expectations.json")["TestParseMountinfoExtraCases"]["cases"], ids=lambda c: c["name"]
)
def test_moby_one_line_cases(case: Dict[str, Any]) -> None:
    found, warned = parse(case["line"].encode() + b"\n")
    if not case["valid"]:
        assert found == [] and len(warned) == 1
        with pytest.raises(mountprobe.ParseError) as error:
            mountprobe.parse_mountinfo(case["line"].encode(), strict=True)
        assert error.value.lineno == 1
        return
    assert len(found) == 1 and warned == []
    view = moby_view(found[0])
    expected = dict(case.get("expected_partial", {}))
    if "Optional" in expected:  # unknown tags are tolerated, not exposed: only shared/master are fields
        expected["Optional"] = " ".join(t for t in expected["Optional"].split() if t.startswith(("shared:", "master:")))
    if "VFSOptions" in expected:
        assert found[0].source is None  # an empty source is None, not ""
    assert {k: view[k] for k in expected} == expected


@pytest.mark.parametrize("case", load("moby-sys/unescape_cases.json")["cases"], ids=lambda c: repr(c["input"]))
def test_moby_unescape_cases(case: Dict[str, Any]) -> None:
    raw = case["input"].encode("utf-8")
    got = mountinfo.unescape(raw)
    # moby decodes only \000-\177 and leaves larger escapes alone; mountprobe decodes every
    # three-digit octal escape that names a byte (\000-\377), as the kernel's escaping is.
    expected = case["expected"].encode("utf-8")
    if b"\\2" in raw or b"\\3" in raw:
        assert b"\\2" not in got and b"\\3" not in got
    else:
        assert got == expected


TAILHOOK = load("tailhook-libmount/expectations.json")
TAILHOOK_KEYS = {
    "mount_id": "id",
    "parent_id": "parent_id",
    "major": "major",
    "minor": "minor",
    "root": "root",
    "mount_point": "mountpoint",
    "fstype": "fstype",
    "mount_source": "source",
}


@pytest.mark.parametrize("case", TAILHOOK["cases"], ids=lambda c: c["test"])
def test_tailhook_cases(case: Dict[str, Any]) -> None:
    data = (DATA / "tailhook-libmount" / case["data_file"]).read_bytes()
    found, warned = parse(data)
    if "error" in case or "error_prefix" in case:
        assert found == [] and len(warned) == 1
        return
    assert len(found) == len(case["expected"]) and warned == []
    for m, want in zip(found, case["expected"]):
        for theirs, ours in TAILHOOK_KEYS.items():
            if theirs in want:
                assert getattr(m, ours) == want[theirs], theirs
        if "mount_options" in want:
            assert ",".join(m.options) == want["mount_options"]
        if "super_options" in want:
            assert ",".join(m.super_options) == want["super_options"]
        if "optional_fields" in want:
            assert (f"shared:{m.shared}" if m.shared else "") == " ".join(
                t for t in want["optional_fields"].split() if t.startswith("shared:")
            )
        if "mount_point_bytes_b64" in want:
            point = base64.b64decode(want["mount_point_bytes_b64"])
            if case["test"] == "test_mount_info_parser_overflowed_escape":
                # tailhook wraps \400 to NUL like mount(8); \400 names no byte, so it is no
                # escape and mountprobe keeps it as written (a NUL cannot be in a path).
                assert os.fsencode(m.mountpoint) == b"/proc\\400"
            else:
                assert os.fsencode(m.mountpoint) == point


@pytest.mark.parametrize("case", load("systemd/libmount_unescaping_cases.json")["cases"], ids=lambda c: c["title"])
def test_systemd_libmount_unescaping_cases(case: Dict[str, Any]) -> None:
    found, warned = parse(case["line"].encode("utf-8", "surrogateescape"))
    assert warned == [] and len(found) == 1
    assert (found[0].source or "") == case["expected_source"]
    assert found[0].mountpoint == case["expected_target"]


def test_systemd_garbled_rhbug_and_empty_tables() -> None:
    found, warned = parse((DATA / "systemd" / "garbled.mountinfo").read_bytes())
    assert len(found) == 2 and len(warned) == 3
    assert (found[0].major, found[0].minor) == (1000999, 110999)
    assert len(parse((DATA / "systemd" / "rhbug-1554943.mountinfo").read_bytes())[0]) == 47
    assert parse(b"") == ([], [])


PROCFS = load("prometheus-procfs/expectations.json")


def procfs_view(m: mountprobe.Mount) -> Dict[str, Any]:
    def as_map(items: Tuple[str, ...]) -> Dict[str, str]:
        return dict((item.split("=")[0], (item.split("=") + [""])[1]) for item in items)

    tags = {
        k: str(v) for k, v in (("shared", m.shared), ("master", m.master), ("propagate_from", m.propagate_from)) if v
    }
    return {
        "MountID": m.id,
        "ParentID": m.parent_id,
        "MajorMinorVer": m.devno,
        "Root": m.root,
        "MountPoint": m.mountpoint,
        "Options": as_map(m.options),
        "OptionalFields": tags,
        "FSType": m.fstype,
        "Source": m.source or "",
        "SuperOptions": as_map(m.super_options),
    }


@pytest.mark.parametrize("case", PROCFS["TestMountInfo"]["cases"], ids=lambda c: c["name"])
def test_procfs_one_line_cases(case: Dict[str, Any]) -> None:
    found, warned = parse(case["line"].encode())
    if case["invalid"]:
        assert found == [] and len(warned) == 1
        return
    want = dict(case["expected"])
    if want["OptionalFields"] is None:  # procfs's "nil" for an empty field 7: no tags
        want["OptionalFields"] = {}
    assert [procfs_view(m) for m in found] == [want]


def test_procfs_fixture_keeps_every_well_formed_entry() -> None:
    spec = PROCFS["TestFSMountInfo"]
    found, warned = parse((DATA / "prometheus-procfs" / spec["data_file"]).read_bytes())
    # procfs accepts "1 1 0:5 /  /root ..." with an empty mount point; a mount point is never
    # empty, so mountprobe skips that line with a warning and keeps the other seven.
    assert len(warned) == 1 and "line 1" in warned[0]
    want = [
        dict(e, MountPoint=e.get("MountPoint", ""), ParentID=e.get("ParentID", 0)) for e in spec["expected_entries"][1:]
    ]
    for e in want:
        e.setdefault("Source", "")
    assert [procfs_view(m) for m in found] == want


K8S = load("kubernetes-mount-utils/expectations.json")


@pytest.mark.parametrize("case", K8S["TestParseMountInfo"]["cases"], ids=lambda c: c["name"])
def test_kubernetes_entries(case: Dict[str, Any]) -> None:
    found, _ = parse((DATA / "kubernetes-mount-utils" / K8S["TestParseMountInfo"]["data_file"]).read_bytes())
    m = next(m for m in found if m.id == case["mount_id"])  # the first of a duplicated id, as k8s does
    want = case["expected"]
    tags = [t for t in want["OptionalFields"] if t.startswith(("shared:", "master:"))]
    assert (m.id, m.parent_id, m.major, m.minor, m.root, m.source, m.mountpoint, m.fstype) == (
        want["ID"], want["ParentID"], want["Major"], want["Minor"], want["Root"], want["Source"],
        want["MountPoint"], want["FsType"],
    )  # fmt: skip
    assert sorted(tags) == sorted(
        [f"shared:{m.shared}"] * (m.shared is not None) + [f"master:{m.master}"] * (m.master is not None)
    )
    assert list(m.options) == want["MountOptions"] and list(m.super_options) == want["SuperOptions"]


@pytest.mark.parametrize("case", K8S["TestBadParseMountInfo"]["cases"], ids=lambda c: c["name"])
def test_kubernetes_bad_device_numbers(case: Dict[str, Any]) -> None:
    found, warned = parse(case["line"].encode())
    if "expected_error" in case:
        assert found == [] and len(warned) == 1
    else:
        assert [(m.id, m.major, m.minor) for m in found] == [(224, 253, 0)]


@pytest.mark.parametrize("case", load("rust-procfs/expectations.json")["cases"], ids=lambda c: c["test"])
def test_rust_procfs_lines(case: Dict[str, Any]) -> None:
    found, warned = parse(case["line"].encode())
    assert len(found) == 1 and warned == []
    if "expected" in case:
        assert found[0].source is None and found[0].super_options[0] == "ro" and found[0].fstype == "tmpfs"


def test_node_exporter_mount_point_sets() -> None:
    spec = load("prometheus-node_exporter/expectations.json")
    found, _ = parse((DATA / "prometheus-node_exporter" / spec["TestMountPointDetails"]["data_file"]).read_bytes())
    assert {m.mountpoint for m in found} == set(spec["TestMountPointDetails"]["expected_mountpoints"])
    fallback = spec["TestMountsFallback"]
    found, _ = parse((DATA / "prometheus-node_exporter" / fallback["data_file"]).read_bytes())
    assert [m.mountpoint for m in found] == fallback["expected_mountpoints"]
    rootfs = spec["TestPathRootfs"]
    found, _ = parse((DATA / "prometheus-node_exporter" / rootfs["data_file"]).read_bytes())
    prefix = rootfs["rootfs_prefix"]
    stripped = {
        (m.mountpoint[len(prefix) :] or "/") if m.mountpoint.startswith(prefix) else m.mountpoint for m in found
    }
    assert stripped <= set(rootfs["expected_mountpoints"])


EXPECTED_COUNTS: Dict[str, Optional[int]] = {
    "opencontainers-cgroups/systemd-docker-container.mountinfo": 23,
    "opencontainers-cgroups/bedrock.mountinfo": 55,
    "opencontainers-cgroups/cgroup2-hybrid.mountinfo": 26,
    "opencontainers-cgroups/find-cgroup-mountpoint.mountinfo": 2,
    "container-runtime-samples/newrelic-docker-cgroupv1.mountinfo": 35,
    "container-runtime-samples/otel-docker-cgroupv2.mountinfo": 23,
    "container-runtime-samples/otel-podman-rootless-cgroupv2.mountinfo": 17,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_container_samples_parse_whole(name: str) -> None:
    found, warned = parse((DATA / name).read_bytes())
    assert (len(found), warned) == (EXPECTED_COUNTS[name], [])


def test_a_formatter_mangled_sample_loses_only_its_mangled_lines() -> None:
    data = (DATA / "container-runtime-samples/newrelic-containerd-k8s-MANGLED.mountinfo").read_bytes()
    found, warned = parse(data)
    assert found[0].fstype == "overlay" and found[0].mountpoint == "/"
    assert len(found) + len(warned) == lines_of(data)
