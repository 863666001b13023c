"""Where the queue database file lives, and refusing places where SQLite's WAL cannot work.

The path comes from, in order: the caller's argument, the ``PRISMQ_QUEUE_DB_PATH`` environment
variable, or a per-OS default (:func:`default_db_path`). :func:`resolve_db_path` then makes it
absolute and refuses it when it is on a network filesystem, is a directory or a special SQLite
name, or cannot be written.

Network filesystems are refused rather than tolerated because WAL keeps its index in shared memory
on one host: "WAL does not work over a network filesystem", and locking there is unreliable too
(SMB, NFS, 9P such as ``\\\\wsl$``, FUSE mounts such as sshfs).

Everything that asks the operating system something goes through a :class:`SystemProbe`, so the
Windows logic runs, and is tested, on Linux with a fake probe. Path strings are therefore handled
with ``ntpath`` or ``posixpath`` chosen by the probe's OS, not by the OS running the code.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from queue_core.exceptions import QueueLocationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DRIVE_FIXED",
    "DRIVE_REMOTE",
    "DRIVE_UNKNOWN",
    "ENV_VAR",
    "WINDOWS_DEFAULT_PATH",
    "RealSystemProbe",
    "SystemProbe",
    "default_db_path",
    "resolve_db_path",
]

ENV_VAR = "PRISMQ_QUEUE_DB_PATH"
WINDOWS_DEFAULT_PATH = r"C:\Data\PrismQ\queue\queue.db"

# Return values of the Win32 GetDriveTypeW function that this module cares about.
DRIVE_UNKNOWN = 0
DRIVE_FIXED = 3
DRIVE_REMOTE = 4

# Linux fstypes (third-from-last mountinfo field) on which WAL's shared memory or POSIX locking
# cannot be trusted. Any FUSE filesystem is refused as well (see _is_remote_linux_fstype).
_LINUX_REMOTE_FSTYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "virtiofs",
        "drvfs",
    }
)

# macOS f_fstypename values of remote filesystems; checked in addition to the MNT_LOCAL flag
# because FUSE filesystems may claim to be local.
_MACOS_REMOTE_FSTYPES = frozenset(
    {"smbfs", "nfs", "afpfs", "webdav", "cifs", "ftp", "macfuse", "osxfuse", "fusefs"}
)
_MNT_LOCAL = 0x00001000

_NETWORK_REASON = (
    "WAL does not work over a network filesystem (its index lives in shared memory on one host) "
    "and file locking there is unreliable; put the queue database on a local disk"
)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")

_T = TypeVar("_T")


class SystemProbe(Protocol):
    """The operating-system questions location checks need; a fake one makes them testable.

    Paths are plain strings in the probed OS's own syntax, so a fake Windows probe can hand out
    ``C:\\...`` paths while the tests run on Linux.
    """

    def os_name(self) -> str:
        """Return ``"windows"``, ``"linux"``, ``"darwin"`` or another lower-case platform name."""
        ...

    def cwd(self) -> str:
        """Return the current working directory, used to make relative paths absolute."""
        ...

    def home(self) -> str:
        """Return the user's home directory."""
        ...

    def realpath(self, path: str) -> str:
        """Return ``path`` with symlinks resolved (on Windows also mapped and subst drives)."""
        ...

    def exists(self, path: str) -> bool:
        """Return True if something exists at ``path``; False also when it cannot be checked."""
        ...

    def is_dir(self, path: str) -> bool:
        """Return True if ``path`` is an existing directory."""
        ...

    def make_dirs(self, path: str) -> None:
        """Create directory ``path`` and its parents; raise OSError on failure."""
        ...

    def is_writable(self, path: str) -> bool:
        """Return True if the process may write to the file or directory ``path``."""
        ...

    def windows_drive_type(self, path: str) -> int:
        """Return ``GetDriveTypeW`` of the volume holding existing ``path`` (4 = DRIVE_REMOTE)."""
        ...

    def linux_mounts(self) -> list[tuple[str, str]]:
        """Return ``(mount_point, fstype)`` pairs in mount-table order; raise OSError on failure."""
        ...

    def macos_fs_info(self, path: str) -> tuple[str, bool]:
        """Return ``(fstypename, is_local)`` of the filesystem holding existing ``path``."""
        ...


class RealSystemProbe:
    """The :class:`SystemProbe` that asks the running operating system."""

    def __init__(self, mountinfo_path: Path = Path("/proc/self/mountinfo")) -> None:
        # The mount table's location is a parameter only so tests can feed a crafted one.
        self._mountinfo_path = mountinfo_path

    def os_name(self) -> str:
        """Return the running OS as ``"windows"``, ``"linux"``, ``"darwin"`` or sys.platform."""
        # A local copy keeps mypy from treating the other platforms' branches as unreachable.
        platform = sys.platform
        if platform == "win32":  # pragma: no cover - only reachable on Windows
            return "windows"
        if platform.startswith("linux"):
            return "linux"
        return platform  # pragma: no cover - macOS and other POSIX systems

    def cwd(self) -> str:
        """Return the current working directory."""
        return str(Path.cwd())

    def home(self) -> str:
        """Return the home directory; raise RuntimeError if it cannot be determined."""
        return str(Path.home())

    def realpath(self, path: str) -> str:
        """Return ``os.path.realpath(path)``."""
        return os.path.realpath(path)

    def exists(self, path: str) -> bool:
        """Return True if ``path`` exists; an unreadable parent counts as not existing."""
        try:
            return Path(path).exists()
        except OSError:
            return False

    def is_dir(self, path: str) -> bool:
        """Return True if ``path`` is an existing directory."""
        try:
            return Path(path).is_dir()
        except OSError:
            return False

    def make_dirs(self, path: str) -> None:
        """Create ``path`` with its parents; existing directories are fine."""
        Path(path).mkdir(parents=True, exist_ok=True)

    def is_writable(self, path: str) -> bool:
        """Return ``os.access(path, os.W_OK)``."""
        return os.access(path, os.W_OK)

    def linux_mounts(self) -> list[tuple[str, str]]:
        """Parse the mount table (``/proc/self/mountinfo``) into ``(mount_point, fstype)``.

        Lines that do not follow the mountinfo format are skipped. :raises OSError: if the file
        cannot be read (no /proc).
        """
        # Mount points are raw bytes; decode them the way os.path.realpath decodes paths.
        text = os.fsdecode(self._mountinfo_path.read_bytes())
        mounts: list[tuple[str, str]] = []
        for line in text.splitlines():
            # "36 35 98:0 /root /mnt/point rw,noatime master:1 - ext4 /dev/sda1 rw": the optional
            # fields before "-" vary in number, so the fstype is found after the separator.
            fields = line.split(" ")
            try:
                separator = fields.index("-", 6)
                mount_point, fstype = fields[4], fields[separator + 1]
            except (ValueError, IndexError):
                continue
            mounts.append((_unescape_mountinfo(mount_point), _unescape_mountinfo(fstype)))
        return mounts

    def windows_drive_type(self, path: str) -> int:  # pragma: no cover - needs Windows
        """Return ``GetDriveTypeW`` of the volume root holding ``path``."""
        if sys.platform == "win32":
            import ctypes
            from ctypes import wintypes

            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            get_volume_path = kernel32.GetVolumePathNameW
            get_volume_path.argtypes = [wintypes.LPCWSTR, wintypes.LPWSTR, wintypes.DWORD]
            get_volume_path.restype = wintypes.BOOL
            get_drive_type = kernel32.GetDriveTypeW
            get_drive_type.argtypes = [wintypes.LPCWSTR]
            get_drive_type.restype = wintypes.UINT
            buffer = ctypes.create_unicode_buffer(1024)
            if get_volume_path(path, buffer, len(buffer)):
                root = buffer.value
            else:
                root = ntpath.splitdrive(path)[0]
            # Without the trailing backslash GetDriveTypeW answers DRIVE_NO_ROOT_DIR.
            return int(get_drive_type(root if root.endswith("\\") else root + "\\"))
        raise OSError(f"GetDriveTypeW is not available on {sys.platform}")

    def macos_fs_info(self, path: str) -> tuple[str, bool]:  # pragma: no cover - needs macOS
        """Return ``(f_fstypename, f_flags & MNT_LOCAL)`` from ``statfs(2)``."""
        if sys.platform == "darwin":
            import ctypes

            class _StatFs(ctypes.Structure):
                # <sys/mount.h> struct statfs, 64-bit-inode layout (MFSTYPENAMELEN 16,
                # MAXPATHLEN 1024).
                _fields_ = (
                    ("f_bsize", ctypes.c_uint32),
                    ("f_iosize", ctypes.c_int32),
                    ("f_blocks", ctypes.c_uint64),
                    ("f_bfree", ctypes.c_uint64),
                    ("f_bavail", ctypes.c_uint64),
                    ("f_files", ctypes.c_uint64),
                    ("f_ffree", ctypes.c_uint64),
                    ("f_fsid", ctypes.c_int32 * 2),
                    ("f_owner", ctypes.c_uint32),
                    ("f_type", ctypes.c_uint32),
                    ("f_flags", ctypes.c_uint32),
                    ("f_fssubtype", ctypes.c_uint32),
                    ("f_fstypename", ctypes.c_char * 16),
                    ("f_mntonname", ctypes.c_char * 1024),
                    ("f_mntfromname", ctypes.c_char * 1024),
                    ("f_flags_ext", ctypes.c_uint32),
                    ("f_reserved", ctypes.c_uint32 * 7),
                )

            libc = ctypes.CDLL(None, use_errno=True)
            try:
                # x86_64 exports the 64-bit-inode variant under this name; arm64 only has
                # plain statfs, which already uses that layout.
                statfs = libc["statfs$INODE64"]
            except AttributeError:
                statfs = libc.statfs
            statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_StatFs)]
            statfs.restype = ctypes.c_int
            result = _StatFs()
            if statfs(os.fsencode(path), ctypes.byref(result)) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, os.strerror(errno), path)
            fstype = bytes(result.f_fstypename).decode("utf-8", "replace")
            return fstype, bool(result.f_flags & _MNT_LOCAL)

        raise OSError(f"statfs probing is only implemented for macOS, not {sys.platform}")


def default_db_path(system: SystemProbe | None = None) -> Path:
    """Return the per-OS default location of the queue database (nothing is created or checked).

    Windows: ``C:\\Data\\PrismQ\\queue\\queue.db``; macOS:
    ``~/Library/Application Support/PrismQ/queue/queue.db``; Linux and other POSIX systems:
    ``$XDG_DATA_HOME/prismq/queue/queue.db``, or ``~/.local/share/prismq/queue/queue.db`` when
    ``XDG_DATA_HOME`` is unset, empty or relative (the XDG spec says to ignore relative values).

    :raises RuntimeError: if the home directory is needed and cannot be determined.
    """
    probe = RealSystemProbe() if system is None else system
    return Path(_default_path_text(probe, os.environ))


def resolve_db_path(
    db_path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
    system: SystemProbe | None = None,
) -> Path:
    """Return the absolute path of the queue database, creating its parent directories.

    ``db_path`` wins; when it is None, ``environ[PRISMQ_QUEUE_DB_PATH]`` is used if it is set and
    not blank, else :func:`default_db_path`. ``environ`` defaults to ``os.environ`` and is also
    where ``XDG_DATA_HOME`` is read for the default. A leading ``~`` or ``~/`` (also ``~\\`` on
    Windows) becomes the probe's home directory (``~user`` is not expanded); a relative path is
    taken from the current directory. Symlinks are kept in the returned path but resolved for the
    network check.

    :raises QueueLocationError: naming the path and the reason, when the path

        - is empty, ``":memory:"`` or a ``file:`` URI (the queue needs a real file with a WAL file
          beside it), contains a NUL character, or ends with a path separator;
        - is an existing directory;
        - is on a network filesystem (UNC path or mapped network drive on Windows; NFS, SMB/CIFS,
          9P, FUSE and similar mounts on Linux; non-local volumes on macOS), because WAL does not
          work there;
        - has a parent directory that cannot be created (the OS error is included);
        - is in a directory the process cannot write (SQLite creates ``-wal`` and ``-shm`` files
          next to the database), or is an existing file it cannot write.

        When the OS cannot be asked whether a filesystem is remote (no /proc, ctypes failure) the
        location is treated as local rather than refused.
    :raises TypeError: if ``db_path`` is not a str or str path-like.
    :raises RuntimeError: if the home directory is needed (``~`` or a default) and unknown.
    """
    probe = RealSystemProbe() if system is None else system
    env = os.environ if environ is None else environ
    os_name = probe.os_name()
    windows = os_name == "windows"
    pathmod = ntpath if windows else posixpath

    if db_path is None:
        from_env = env.get(ENV_VAR, "")
        raw = from_env if from_env.strip() else _default_path_text(probe, env)
    else:
        raw = os.fspath(db_path)
        if not isinstance(raw, str):
            raise TypeError(f"db_path must be a str or os.PathLike[str], not {type(raw).__name__}")

    _refuse_special_names(raw, windows)
    absolute = pathmod.normpath(pathmod.join(probe.cwd(), _expand_user(raw, probe, windows)))

    if probe.is_dir(absolute):
        raise QueueLocationError(
            absolute, "it is a directory; give the path of the database file inside it"
        )
    remote = _remote_reason(absolute, probe, os_name)
    if remote is not None:
        raise QueueLocationError(absolute, f"{remote}; {_NETWORK_REASON}")

    parent = pathmod.dirname(absolute)
    try:
        probe.make_dirs(parent)
    except OSError as exc:
        raise QueueLocationError(
            absolute, f"cannot create the directory {parent!r}: {exc.strerror or exc}"
        ) from exc
    if not probe.is_writable(parent):
        raise QueueLocationError(
            absolute,
            f"the directory {parent!r} is not writable; SQLite must create the database and its "
            "-wal and -shm files there",
        )
    if probe.exists(absolute) and not probe.is_writable(absolute):
        raise QueueLocationError(absolute, "the existing database file is not writable")
    return Path(absolute)


def _default_path_text(probe: SystemProbe, environ: Mapping[str, str]) -> str:
    os_name = probe.os_name()
    if os_name == "windows":
        return WINDOWS_DEFAULT_PATH
    if os_name == "darwin":
        return posixpath.join(
            probe.home(), "Library", "Application Support", "PrismQ", "queue", "queue.db"
        )
    data_home = environ.get("XDG_DATA_HOME", "")
    if not posixpath.isabs(data_home):
        data_home = posixpath.join(probe.home(), ".local", "share")
    return posixpath.join(data_home, "prismq", "queue", "queue.db")


def _refuse_special_names(raw: str, windows: bool) -> None:
    if not raw.strip():
        raise QueueLocationError(raw, "the path is empty")
    if raw == ":memory:":
        raise QueueLocationError(
            raw, "an in-memory database cannot be shared between processes and has no WAL file"
        )
    if raw.startswith("file:"):
        raise QueueLocationError(raw, "SQLite URI filenames are not accepted; give a file path")
    if "\0" in raw:
        raise QueueLocationError(raw, "the path contains a NUL character")
    separators = ("\\", "/") if windows else ("/",)
    if raw.endswith(separators):
        # normpath would drop the separator and silently turn a directory name into a file name.
        raise QueueLocationError(raw, "the path ends with a separator, so it names a directory")


def _expand_user(raw: str, probe: SystemProbe, windows: bool) -> str:
    separators = ("\\", "/") if windows else ("/",)
    if raw == "~" or raw.startswith(tuple("~" + sep for sep in separators)):
        return probe.home() + raw[1:]
    return raw


def _probe_or(default: _T, call: Callable[[], _T]) -> _T:
    # A failing probe must not lock users out of a disk that is almost always local.
    try:
        return call()
    except Exception:
        return default


def _nearest_existing(path: str, probe: SystemProbe, windows: bool) -> str:
    # The database file (and maybe its directories) may not exist yet; judge the nearest existing
    # ancestor, which is on the same filesystem the new file will be created on.
    dirname = ntpath.dirname if windows else posixpath.dirname
    current = path
    while not probe.exists(current):
        parent = dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _remote_reason(absolute: str, probe: SystemProbe, os_name: str) -> str | None:
    """Return why ``absolute`` is on a network filesystem, or None if it is (taken as) local."""
    if os_name == "windows":
        return _windows_remote_reason(absolute, probe)
    if os_name not in ("linux", "darwin"):
        # No detection for other systems (BSDs): accept rather than guess.
        return None
    existing = _nearest_existing(absolute, probe, windows=False)
    real = _probe_or(existing, lambda: probe.realpath(existing))
    if os_name == "darwin":
        fstype, is_local = _probe_or(("", True), lambda: probe.macos_fs_info(real))
        if not is_local or fstype in _MACOS_REMOTE_FSTYPES or fstype.startswith("fuse"):
            return f"it is on a {'non-local ' if not is_local else ''}{fstype or '?'} volume"
        return None
    mount = _mount_of(real, _probe_or([], probe.linux_mounts))
    if mount is not None and _is_remote_linux_fstype(mount[1]):
        return f"it is on a {mount[1]} filesystem mounted at {mount[0]!r}"
    return None


def _windows_remote_reason(absolute: str, probe: SystemProbe) -> str | None:
    if _is_unc(absolute):
        return "it is a UNC network path"
    existing = _nearest_existing(absolute, probe, windows=True)
    # realpath turns a mapped network drive into its \\server\share target (Python >= 3.8).
    real = _probe_or(existing, lambda: probe.realpath(existing))
    if _is_unc(real):
        return f"it resolves to the network path {real!r}"
    if _probe_or(DRIVE_UNKNOWN, lambda: probe.windows_drive_type(real)) == DRIVE_REMOTE:
        return f"{ntpath.splitdrive(real)[0] or real} is a network drive"
    return None


def _is_unc(path: str) -> bool:
    # \\server\share, \\wsl$\..., \\wsl.localhost\..., and the long forms \\?\UNC\... and
    # \\.\UNC\...; other \\?\ and \\.\ paths (\\?\C:\..., volume GUIDs) are local syntax.
    text = path.replace("/", "\\")
    if text.startswith(("\\\\?\\", "\\\\.\\")):
        return text[4:8].upper() == "UNC\\"
    return text.startswith("\\\\")


def _mount_of(path: str, mounts: list[tuple[str, str]]) -> tuple[str, str] | None:
    # The longest mount point containing the path wins; for equal mount points (a filesystem
    # mounted over another) the later entry is the one on top, so >= keeps the last one.
    best: tuple[str, str] | None = None
    for mount_point, fstype in mounts:
        prefix = mount_point.rstrip("/") + "/"
        if (path == mount_point or path.startswith(prefix)) and (
            best is None or len(mount_point) >= len(best[0])
        ):
            best = (mount_point, fstype)
    return best


def _is_remote_linux_fstype(fstype: str) -> bool:
    # "fuse" and "fuse.<name>" are userspace filesystems (sshfs, rclone, s3fs) that do not give
    # WAL's shared memory and locks the guarantees it needs; "fuseblk" (ntfs-3g on a local disk)
    # is a local block device and is allowed.
    return fstype in _LINUX_REMOTE_FSTYPES or fstype == "fuse" or fstype.startswith("fuse.")


def _unescape_mountinfo(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mountinfo as \040, \011, \012, \134.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)
