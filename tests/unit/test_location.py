"""Tests for queue_core.location: where the database lives and which places are refused.

Windows, macOS and most Linux mount situations are exercised through ``FakeProbe``, an in-memory
filesystem, so they run on any OS; a few tests use the real probe on the real temporary directory.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from queue_core.exceptions import QueueLocationError
from queue_core.location import (
    DRIVE_FIXED,
    DRIVE_REMOTE,
    ENV_VAR,
    WINDOWS_DEFAULT_PATH,
    RealSystemProbe,
    SystemProbe,
    default_db_path,
    resolve_db_path,
)


@dataclass
class FakeProbe:
    """An in-memory OS: directories and files are strings in the fake OS's path syntax."""

    os: str = "linux"
    cwd_path: str = "/work"
    home_path: str = "/home/u"
    dirs: set[str] = field(default_factory=lambda: {"/", "/home", "/home/u", "/work"})
    files: set[str] = field(default_factory=set)
    readonly: set[str] = field(default_factory=set)
    realpaths: dict[str, str] = field(default_factory=dict)
    drive_types: dict[str, int] = field(default_factory=dict)
    mounts: list[tuple[str, str]] = field(default_factory=lambda: [("/", "ext4")])
    mac_info: tuple[str, bool] = ("apfs", True)
    failing: set[str] = field(default_factory=set)
    mkdir_error: OSError | None = None
    created: list[str] = field(default_factory=list)

    def _maybe_fail(self, name: str) -> None:
        if name in self.failing:
            raise OSError(f"{name} probe failed")

    def os_name(self) -> str:
        return self.os

    def cwd(self) -> str:
        return self.cwd_path

    def home(self) -> str:
        return self.home_path

    def realpath(self, path: str) -> str:
        self._maybe_fail("realpath")
        return self.realpaths.get(path, path)

    def exists(self, path: str) -> bool:
        return path in self.dirs or path in self.files

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def make_dirs(self, path: str) -> None:
        if self.mkdir_error is not None:
            raise self.mkdir_error
        dirname = ntpath.dirname if self.os == "windows" else posixpath.dirname
        self.created.append(path)
        while path not in self.dirs:
            self.dirs.add(path)
            path = dirname(path)

    def is_writable(self, path: str) -> bool:
        return path not in self.readonly

    def windows_drive_type(self, path: str) -> int:
        self._maybe_fail("windows_drive_type")
        return self.drive_types.get(ntpath.splitdrive(path)[0].upper(), DRIVE_FIXED)

    def linux_mounts(self) -> list[tuple[str, str]]:
        self._maybe_fail("linux_mounts")
        return self.mounts

    def macos_fs_info(self, path: str) -> tuple[str, bool]:
        self._maybe_fail("macos_fs_info")
        return self.mac_info


def windows_probe(**kwargs: object) -> FakeProbe:
    probe = FakeProbe(
        os="windows",
        cwd_path="C:\\Users\\me",
        home_path="C:\\Users\\me",
        dirs={"C:\\", "C:\\Users", "C:\\Users\\me"},
        mounts=[],
    )
    for name, value in kwargs.items():
        setattr(probe, name, value)
    return probe


def refused(path: str, probe: SystemProbe | None = None) -> QueueLocationError:
    with pytest.raises(QueueLocationError) as info:
        resolve_db_path(path, environ={}, system=probe)
    return info.value


# --- where the path comes from ------------------------------------------------------------------


def test_env_var_wins_over_default() -> None:
    probe = FakeProbe()
    result = resolve_db_path(None, environ={ENV_VAR: "/work/env/q.db"}, system=probe)
    assert result.as_posix() == "/work/env/q.db"


def test_explicit_argument_wins_over_env_var() -> None:
    probe = FakeProbe()
    result = resolve_db_path("/work/arg.db", environ={ENV_VAR: "/work/env.db"}, system=probe)
    assert result.as_posix() == "/work/arg.db"


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_env_var_is_ignored(value: str) -> None:
    probe = FakeProbe()
    result = resolve_db_path(None, environ={ENV_VAR: value}, system=probe)
    assert result.as_posix() == "/home/u/.local/share/prismq/queue/queue.db"
    assert "/home/u/.local/share/prismq/queue" in probe.created


def test_environ_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "from-env.db"))
    assert resolve_db_path(None) == tmp_path / "from-env.db"


def test_path_like_argument_is_accepted(tmp_path: Path) -> None:
    assert resolve_db_path(tmp_path / "q.db", environ={}) == tmp_path / "q.db"


def test_bytes_path_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="db_path must be a str"):
        resolve_db_path(b"/work/q.db", system=FakeProbe())  # type: ignore[arg-type]


def test_relative_path_is_made_absolute_and_normalised() -> None:
    result = resolve_db_path("data/../q.db", environ={}, system=FakeProbe())
    assert result.as_posix() == "/work/q.db"


def test_tilde_is_expanded_with_the_probes_home() -> None:
    result = resolve_db_path("~/queues/q.db", environ={}, system=FakeProbe())
    assert result.as_posix() == "/home/u/queues/q.db"


def test_bare_tilde_is_the_home_directory_and_refused() -> None:
    error = refused("~", FakeProbe())
    assert error.path == "/home/u"
    assert "directory" in error.reason


def test_xdg_data_home_from_environ_is_used_for_the_default() -> None:
    probe = FakeProbe()
    result = resolve_db_path(None, environ={"XDG_DATA_HOME": "/xdg"}, system=probe)
    assert result.as_posix() == "/xdg/prismq/queue/queue.db"


# --- default_db_path ----------------------------------------------------------------------------


def test_default_path_windows() -> None:
    result = default_db_path(windows_probe())
    assert str(result) == WINDOWS_DEFAULT_PATH == "C:\\Data\\PrismQ\\queue\\queue.db"


def test_default_path_linux_without_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    result = default_db_path(FakeProbe())
    assert result.as_posix() == "/home/u/.local/share/prismq/queue/queue.db"


def test_default_path_linux_with_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    result = default_db_path(FakeProbe())
    assert result.as_posix() == "/srv/data/prismq/queue/queue.db"


@pytest.mark.parametrize("value", ["", "relative/dir"])
def test_default_path_linux_ignores_empty_or_relative_xdg(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", value)
    result = default_db_path(FakeProbe())
    assert result.as_posix() == "/home/u/.local/share/prismq/queue/queue.db"


def test_default_path_darwin() -> None:
    result = default_db_path(FakeProbe(os="darwin", home_path="/Users/me"))
    assert result.as_posix() == "/Users/me/Library/Application Support/PrismQ/queue/queue.db"


def test_default_path_other_posix_uses_xdg_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    result = default_db_path(FakeProbe(os="freebsd14"))
    assert result.as_posix() == "/home/u/.local/share/prismq/queue/queue.db"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks the Linux layout")
def test_default_path_with_real_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = tmp_path / ".local" / "share" / "prismq" / "queue" / "queue.db"
    assert default_db_path() == expected
    assert not expected.parent.exists()  # only resolve_db_path creates directories


def test_resolve_default_creates_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = resolve_db_path(None, environ={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert result == tmp_path / "xdg" / "prismq" / "queue" / "queue.db"
    assert result.parent.is_dir()


# --- special names and bad shapes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("  ", "empty"),
        (":memory:", "in-memory"),
        ("file:q.db?mode=memory&cache=shared", "URI"),
        ("/work/q\0.db", "NUL"),
        ("/work/queue/", "separator"),
    ],
)
def test_special_names_are_refused(raw: str, fragment: str) -> None:
    probe = FakeProbe()
    error = refused(raw, probe)
    assert fragment in error.reason
    assert repr(raw) in str(error)
    assert probe.created == []


def test_windows_trailing_backslash_is_refused() -> None:
    assert "separator" in refused("C:\\Data\\queue\\", windows_probe()).reason


def test_existing_directory_is_refused(tmp_path: Path) -> None:
    error = refused(str(tmp_path))
    assert error.path == str(tmp_path)
    assert "is a directory" in str(error)


# --- Windows ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unc",
    [
        "\\\\server\\share\\queue\\q.db",
        "\\\\?\\UNC\\server\\share\\queue\\q.db",
        "\\\\.\\UNC\\server\\share\\q.db",
        "\\\\wsl$\\Ubuntu\\home\\u\\q.db",
        "\\\\wsl.localhost\\Ubuntu\\home\\u\\q.db",
        "//server/share/q.db",
    ],
)
def test_windows_unc_paths_are_refused(unc: str) -> None:
    probe = windows_probe()
    error = refused(unc, probe)
    assert "UNC" in error.reason
    assert "WAL does not work over a network filesystem" in error.reason
    assert error.path.startswith("\\\\")
    assert repr(error.path) in str(error)
    assert probe.created == []  # nothing is created on the share


def test_windows_local_fixed_drive_is_accepted() -> None:
    probe = windows_probe()
    result = resolve_db_path("C:\\PrismQ\\queue\\q.db", environ={}, system=probe)
    assert str(result) == "C:\\PrismQ\\queue\\q.db"
    assert probe.created == ["C:\\PrismQ\\queue"]


def test_windows_long_local_path_is_accepted() -> None:
    probe = windows_probe()
    result = resolve_db_path("\\\\?\\C:\\PrismQ\\q.db", environ={}, system=probe)
    assert str(result) == "\\\\?\\C:\\PrismQ\\q.db"


def test_windows_default_is_created_under_c_data() -> None:
    probe = windows_probe()
    result = resolve_db_path(None, environ={}, system=probe)
    assert str(result) == WINDOWS_DEFAULT_PATH
    assert probe.created == ["C:\\Data\\PrismQ\\queue"]


def test_windows_relative_and_tilde_paths() -> None:
    probe = windows_probe()
    assert str(resolve_db_path("q.db", environ={}, system=probe)) == "C:\\Users\\me\\q.db"
    assert str(resolve_db_path("~\\x\\q.db", environ={}, system=probe)) == "C:\\Users\\me\\x\\q.db"
    assert str(resolve_db_path("~/y/q.db", environ={}, system=probe)) == "C:\\Users\\me\\y\\q.db"


def test_windows_mapped_network_drive_is_refused() -> None:
    probe = windows_probe(drive_types={"Z:": DRIVE_REMOTE})
    probe.dirs.add("Z:\\")
    error = refused("Z:\\queue\\q.db", probe)
    assert "Z: is a network drive" in error.reason
    assert "WAL" in error.reason
    assert error.path == "Z:\\queue\\q.db"
    assert probe.created == []


def test_windows_drive_resolving_to_unc_is_refused() -> None:
    # What os.path.realpath does for a mapped drive on Python >= 3.8.
    probe = windows_probe(realpaths={"Y:\\": "\\\\nas\\share\\"})
    probe.dirs.add("Y:\\")
    error = refused("Y:\\queue\\q.db", probe)
    assert repr("\\\\nas\\share\\") in error.reason
    assert "network" in error.reason


def test_windows_failing_drive_probe_is_treated_as_local() -> None:
    probe = windows_probe(failing={"windows_drive_type", "realpath"})
    result = resolve_db_path("C:\\q\\q.db", environ={}, system=probe)
    assert str(result) == "C:\\q\\q.db"


def test_windows_missing_drive_root_is_judged_by_itself() -> None:
    # Nothing on Q: exists, so the walk up stops at the root and the drive type decides.
    probe = windows_probe(drive_types={"Q:": DRIVE_REMOTE})
    assert "network drive" in refused("Q:\\a\\b\\q.db", probe).reason


# --- Linux --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fstype", ["nfs", "nfs4", "cifs", "smb3", "9p", "virtiofs", "drvfs", "fuse", "fuse.sshfs"]
)
def test_linux_network_filesystems_are_refused(fstype: str) -> None:
    probe = FakeProbe(mounts=[("/", "ext4"), ("/mnt/share", fstype)])
    probe.dirs.update({"/mnt", "/mnt/share"})
    error = refused("/mnt/share/queue/q.db", probe)
    assert f"{fstype} filesystem mounted at '/mnt/share'" in error.reason
    assert "WAL does not work over a network filesystem" in error.reason
    assert "/mnt/share/queue/q.db" in str(error)
    assert probe.created == []


@pytest.mark.parametrize("fstype", ["ext4", "tmpfs", "xfs", "btrfs", "overlay", "fuseblk"])
def test_linux_local_filesystems_are_accepted(fstype: str) -> None:
    probe = FakeProbe(mounts=[("/", fstype)])
    result = resolve_db_path("/work/q/q.db", environ={}, system=probe)
    assert result.as_posix() == "/work/q/q.db"
    assert probe.created == ["/work/q"]


@pytest.mark.parametrize(
    "mounts",
    [
        [("/", "ext4"), ("/mnt/share", "cifs"), ("/mnt/share/local", "ext4")],
        [("/mnt/share/local", "ext4"), ("/mnt/share", "cifs"), ("/", "ext4")],
    ],
)
def test_linux_longest_mount_point_wins(mounts: list[tuple[str, str]]) -> None:
    probe = FakeProbe(mounts=mounts)
    probe.dirs.update({"/mnt", "/mnt/share", "/mnt/share/local"})
    assert resolve_db_path("/mnt/share/local/q.db", environ={}, system=probe)
    assert "cifs" in refused("/mnt/share/other/q.db", probe).reason
    # /mnt/sharex is not inside /mnt/share.
    assert resolve_db_path("/mnt/sharex/q.db", environ={}, system=probe)


def test_linux_later_mount_on_same_point_wins() -> None:
    probe = FakeProbe(mounts=[("/", "ext4"), ("/data", "ext4"), ("/data", "nfs4")])
    probe.dirs.add("/data")
    assert "nfs4" in refused("/data/q.db", probe).reason


def test_linux_mount_point_itself_matches() -> None:
    probe = FakeProbe(mounts=[("/", "ext4"), ("/data", "nfs")])
    # /data/q.db does not exist; its nearest existing ancestor is the mount point itself.
    probe.dirs.add("/data")
    assert "nfs" in refused("/data/q.db", probe).reason


def test_linux_symlink_into_network_mount_is_refused() -> None:
    probe = FakeProbe(
        mounts=[("/", "ext4"), ("/mnt/nfs", "nfs")],
        realpaths={"/home/u/link": "/mnt/nfs/data"},
    )
    probe.dirs.add("/home/u/link")
    error = refused("/home/u/link/q.db", probe)
    assert error.path == "/home/u/link/q.db"  # the user's path is reported, not the target
    assert "nfs" in error.reason


def test_linux_failing_mount_probe_is_treated_as_local() -> None:
    probe = FakeProbe(failing={"linux_mounts", "realpath"})
    assert resolve_db_path("/work/q.db", environ={}, system=probe).as_posix() == "/work/q.db"


def test_linux_no_matching_mount_is_local() -> None:
    probe = FakeProbe(mounts=[("/mnt", "nfs")])
    assert resolve_db_path("/work/q.db", environ={}, system=probe).as_posix() == "/work/q.db"


def test_other_posix_systems_are_not_probed() -> None:
    probe = FakeProbe(os="freebsd14", mounts=[("/", "nfs")], failing={"macos_fs_info"})
    assert resolve_db_path("/work/q.db", environ={}, system=probe).as_posix() == "/work/q.db"


# --- macOS --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info",
    [("smbfs", False), ("nfs", False), ("webdav", False), ("macfuse", True), ("apfs", False)],
)
def test_darwin_remote_volumes_are_refused(info: tuple[str, bool]) -> None:
    probe = FakeProbe(os="darwin", mac_info=info)
    error = refused("/work/q.db", probe)
    assert info[0] in error.reason
    assert "WAL does not work over a network filesystem" in error.reason


@pytest.mark.parametrize("failing", [set(), {"macos_fs_info"}])
def test_darwin_local_or_unknown_volume_is_accepted(failing: set[str]) -> None:
    probe = FakeProbe(os="darwin", mac_info=("apfs", True), failing=failing)
    assert resolve_db_path("/work/q.db", environ={}, system=probe).as_posix() == "/work/q.db"


def test_darwin_unknown_fstype_non_local_is_named() -> None:
    probe = FakeProbe(os="darwin", mac_info=("", False))
    assert "non-local ? volume" in refused("/work/q.db", probe).reason


# --- directories and permissions ----------------------------------------------------------------


def test_missing_parents_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c" / "queue.db"
    assert resolve_db_path(str(target), environ={}) == target
    assert target.parent.is_dir()
    assert not target.exists()  # only the directories; SQLite creates the file


def test_directory_creation_error_names_directory_and_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory", encoding="utf-8")
    error = refused(str(blocker / "sub" / "q.db"))
    assert repr(str(blocker / "sub")) in error.reason
    assert "cannot create the directory" in error.reason
    assert isinstance(error.__cause__, OSError)


def test_directory_creation_error_without_strerror() -> None:
    probe = FakeProbe(mkdir_error=OSError("quota exceeded"))
    assert "'/work/new': quota exceeded" in refused("/work/new/q.db", probe).reason


def test_unwritable_directory_is_refused_through_probe() -> None:
    probe = FakeProbe(readonly={"/work/ro"})
    probe.dirs.add("/work/ro")
    error = refused("/work/ro/q.db", probe)
    assert "'/work/ro' is not writable" in error.reason
    assert "-wal" in error.reason


def test_unwritable_existing_file_is_refused_through_probe() -> None:
    probe = FakeProbe(files={"/work/q.db"}, readonly={"/work/q.db"})
    assert "existing database file is not writable" in refused("/work/q.db", probe).reason


def test_writable_existing_file_is_accepted(tmp_path: Path) -> None:
    existing = tmp_path / "q.db"
    existing.write_bytes(b"")
    assert resolve_db_path(existing, environ={}) == existing


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root and Windows ignore mode 0o500"
)
def test_unwritable_directory_is_refused_for_real(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        error = refused(str(locked / "q.db"))
    finally:
        locked.chmod(0o700)
    assert "not writable" in error.reason


# --- the real probe -----------------------------------------------------------------------------


def test_real_probe_matches_the_protocol_and_os() -> None:
    probe: SystemProbe = RealSystemProbe()
    expected = {"win32": "windows", "linux": "linux"}.get(sys.platform, sys.platform)
    assert probe.os_name() == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/mountinfo")
def test_real_probe_judges_tmp_path_local(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "q.db"
    assert resolve_db_path(str(target), environ={}) == target


@pytest.mark.skipif(
    not Path("/proc/self/mountinfo").exists(), reason="no /proc/self/mountinfo here"
)
def test_real_mountinfo_is_parsed() -> None:
    mounts = RealSystemProbe().linux_mounts()
    assert "/" in {mount_point for mount_point, _ in mounts}
    assert all(mount_point.startswith("/") and fstype for mount_point, fstype in mounts)


def test_mountinfo_parsing_handles_escapes_and_bad_lines(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(
        b"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        b"90 27 0:50 / /mnt/My\\040Share rw,relatime - cifs //srv/share rw\n"
        b"91 27 0:51 / /mnt/tab\\011and\\134slash rw master:3 shared:4 - fuse.sshfs u@h: rw\n"
        b"garbage line\n"
        b"92 27 0:52 / /mnt/no-fstype rw -\n"
        b"\n"
    )
    mounts = RealSystemProbe(mountinfo).linux_mounts()
    assert mounts == [
        ("/", "ext4"),
        ("/mnt/My Share", "cifs"),
        ("/mnt/tab\tand\\slash", "fuse.sshfs"),
    ]


def test_escaped_mount_point_is_matched_against_real_path(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    share = tmp_path / "My Share"
    share.mkdir()
    escaped = str(share).replace(" ", "\\040")
    mountinfo.write_text(
        f"1 0 0:1 / / rw - ext4 /dev/x rw\n2 1 0:2 / {escaped} rw - cifs //s/s rw\n",
        encoding="utf-8",
    )

    class Probe(RealSystemProbe):
        def os_name(self) -> str:
            return "linux"

    error = refused(str(share / "q.db"), Probe(mountinfo))
    assert "cifs" in error.reason


def test_missing_mountinfo_does_not_block(tmp_path: Path) -> None:
    class Probe(RealSystemProbe):
        def os_name(self) -> str:
            return "linux"

    probe = Probe(tmp_path / "no-such-mountinfo")
    with pytest.raises(OSError, match="no-such-mountinfo"):
        probe.linux_mounts()
    target = tmp_path / "q.db"
    assert resolve_db_path(str(target), environ={}, system=probe) == target


def test_real_probe_existence_checks_swallow_os_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(self: Path, *args: object, **kwargs: object) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", deny)
    monkeypatch.setattr(Path, "is_dir", deny)
    probe = RealSystemProbe()
    assert probe.exists("/anything") is False
    assert probe.is_dir("/anything") is False


def test_real_probe_simple_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    probe = RealSystemProbe()
    assert Path(probe.cwd()) == tmp_path
    assert Path(probe.home()) == tmp_path
    assert probe.realpath(str(tmp_path)) == os.path.realpath(tmp_path)
    assert probe.is_writable(str(tmp_path))
    probe.make_dirs(str(tmp_path / "x" / "y"))
    probe.make_dirs(str(tmp_path / "x" / "y"))  # existing is fine
    assert probe.is_dir(str(tmp_path / "x" / "y"))
