"""Checks that an output path can be written, made before any work so a run never fails at its end; the files an
input pattern that no shell expanded matches."""
from __future__ import annotations

import errno
import fnmatch
import glob
import hashlib
import ntpath
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from stream.errors import UserError


# Windows refuses these in a name, or takes them for something else: "take 12:30.mp4" is the stream "30.mp4"
# of a file "take 12" (a time from %TIME% or isoformat() in a script's name), NUL.mp4 or con.png a device
# (into which the output vanishes), and a name's trailing dot or space is dropped. Python 3.13's
# os.path.isreserved tells the same, there only.
WINDOWS_FORBIDDEN = set('<>:"|?*') | {chr(code) for code in range(32)}
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", *(f"{port}{n}" for port in ("COM", "LPT")
                                                                     for n in (*"123456789", "¹", "²", "³"))}


def windows_name_problem(path: str) -> str | None:
    """What Windows makes of `path` that its user did not mean, or None. Pure: testable anywhere."""
    _, rest = ntpath.splitdrive(path)  # "C:" or "\\\\server\\share" is no name
    for part in (part for part in rest.replace("/", "\\").split("\\") if part not in ("", ".", "..")):
        bad = sorted(set(part) & WINDOWS_FORBIDDEN)
        if bad:
            shown = ", ".join(repr(char) if char.isprintable() else f"character {ord(char)}" for char in bad)
            return f"Windows does not allow {shown} in a file or folder name ({part!r})"
        if part[-1] in ". ":
            return f"Windows drops the dot or space that ends {part!r}"
        if part.split(".")[0].rstrip(" ").upper() in WINDOWS_DEVICES:
            return f"{part!r} names a Windows device ({part.split('.')[0].upper()}), not a file"
    return None


def ensure_writable(path: Path, what: str = "output", create_folder: bool = True) -> Path:
    """Create `path`'s folder and check the file can be created or replaced there, without touching an
    existing file (an earlier output survives a run that fails before its first frame). Raises
    UserError naming the problem: a folder where the file should be, a read-only place, a parent that
    is a file, a name too long; on Windows also a name it refuses or reads otherwise, and a file another
    program holds open. A link is followed to where it points (a dangling one failed mid-run).
    `create_folder` False: a check before the run (the model may still fail to load), which creates nothing; a
    folder not there yet is checked where it would be made, and made when the file is opened."""
    path = Path(path).expanduser()
    problem = windows_name_problem(str(path)) if sys.platform == "win32" else None
    if problem is not None:
        raise UserError(f"cannot write {what} {path}: {problem}; choose another name")
    try:
        if path.exists() and not path.is_file() and not path.is_dir():  # a terminal, a pipe (/dev/stdout | ...)
            if not os.access(path, os.W_OK):
                raise UserError(f"cannot write {what} {path}: not writable; choose another name")
            return path  # as given: a pipe's /dev/stdout resolves to a name that is no path (pipe:[N])
        return _ensure_writable(Path(os.path.realpath(path)) if path.is_symlink() else path, what, create_folder)
    except OSError as exc:  # a name longer than the file system takes (ENAMETOOLONG), a loop of links
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}; choose another name") from None


def _ensure_writable(path: Path, what: str, create_folder: bool = True) -> Path:
    if path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a folder; give a file name")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write {what} {path}: {blocking} is a file, not a folder; choose another place")
    folder = path.parent
    unmade = blocking is not None and not folder.exists()
    if unmade:
        _refuse_long_names(path, blocking, what)
    if not create_folder and unmade:
        folder = blocking  # where its folder would be made: a run that fails before writing leaves none behind
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {what} {path}: cannot create its folder ({exc.strerror or exc}); "
                            f"choose another place") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {what} {path}: the file is read-only; choose another name")
    if held_open_elsewhere(path):
        raise UserError(f"cannot write {what} {path}: another program has it open (a player or a viewer?), so it "
                        f"cannot be replaced; close it there, or choose another name")
    try:  # a real probe: os.access says yes to root, and on some file systems that refuse writes
        fd, probe = tempfile.mkstemp(prefix=".depthcam-probe-", dir=folder)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {_no_new_file(folder, exc)}; choose another place") \
            from None
    os.close(fd)
    os.unlink(probe)
    return path


# The system's refusals to create a file that say why in themselves; another one (/proc's "No such file or
# directory", of a folder that is there) contradicted "its folder is not writable" beside it
SELF_EXPLAINED = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC}


def _no_new_file(folder: Path, exc: OSError) -> str:
    """Why no file could be created in `folder`, which exists, in words that do not contradict it."""
    reason = exc.strerror or str(exc)
    if exc.errno in SELF_EXPLAINED:
        return f"its folder is not writable ({reason})"
    return f"its folder {folder} is not writable (creating a file there fails with {reason!r}, though it exists)"


# CreateFileW's constants (winnt.h, winerror.h)
_DELETE, _SHARE_ALL, _OPEN_EXISTING, _ERROR_SHARING_VIOLATION = 0x00010000, 0x7, 3, 32


def held_open_elsewhere(path: Path) -> bool:
    """On Windows, whether another program holds `path` open without letting it be deleted (most do: a player
    showing the last output, a viewer the photo). The output is renamed over it at the end, which then fails,
    after the whole run, the frames left under the hidden name. Asks for the access a rename needs with every
    sharing allowed: only another holder's refusal fails it. Elsewhere a file open elsewhere is replaced."""
    if sys.platform != "win32" or not path.is_file():
        return False
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # its own instance: argtypes set here stay here
    kernel32.CreateFileW.restype = wintypes.HANDLE
    kernel32.CreateFileW.argtypes = (wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, wintypes.LPVOID,
                                     wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE)
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    handle = kernel32.CreateFileW(str(path), _DELETE, _SHARE_ALL, None, _OPEN_EXISTING, 0, None)
    if handle is None or handle == wintypes.HANDLE(-1).value:  # INVALID_HANDLE_VALUE
        return ctypes.get_last_error() == _ERROR_SHARING_VIOLATION
    kernel32.CloseHandle(handle)
    return False


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two paths name one file (the second may not exist yet)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


# The longest file name where the system does not say (Windows; a folder not made yet): most file systems' 255
NAME_MAX = 255


def partial_path(target: Path, tag: str = "part") -> Path:
    """The hidden name beside `target` that it is written under until complete: `.NAME.TAG`, or, where that would
    pass the folder's longest name (a name of 250 bytes, itself allowed, failed at the first frame, the model loaded,
    with "File name too long"), NAME cut short and a digest of the whole name added (two long outputs of one run,
    NAME_portrait and NAME_depth, still get two names)."""
    name = f".{target.name}.{tag}"
    longest = longest_name(target.parent)
    if len(os.fsencode(name)) <= longest:
        return target.with_name(name)
    digest = hashlib.sha1(os.fsencode(target.name)).hexdigest()[:12]
    end = f"~{digest}.{tag}"
    head = target.name
    while head and len(os.fsencode(f".{head}{end}")) > longest:
        head = head[:-1]
    return target.with_name(f".{head}{end}")


def longest_name(folder: Path) -> int:
    """The longest file name `folder` takes, in bytes (NAME_MAX where the system does not say)."""
    try:
        limit = int(os.pathconf(folder, "PC_NAME_MAX")) if hasattr(os, "pathconf") else NAME_MAX
    except (OSError, ValueError, TypeError):
        return NAME_MAX
    return limit if limit > 0 else NAME_MAX  # -1 or 0: a file system that does not say


def _refuse_long_names(path: Path, blocking: Path, what: str) -> None:
    """A name longer than the disk takes among the folders not made yet and the file: the system finds it only in a
    folder that is there (below a missing one the lookup fails first, unsaid), so a check before the run passed it
    and the sink refused it after the model and the kernels had loaded, its folder made and left empty."""
    found = name_too_long(path.relative_to(blocking).parts, blocking)
    if found is not None:
        raise UserError(f"cannot write {what} {path}: a name in it is {found[0]} bytes long, over the {found[1]} its "
                        f"disk takes; choose a shorter name")


def name_too_long(names: Iterable[str], folder: Path) -> tuple[int, int] | None:
    """(the longest of `names` in bytes, the longest name `folder`'s disk takes) where the first passes the second."""
    longest = longest_name(folder)
    size = max(len(os.fsencode(name)) for name in names)
    return (size, longest) if size > longest else None


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(partial)` beside `path`, then renamed over it: a failure (a full disk) leaves the file that was
    there, not half of one. An OSError names `path`, not the partial file. A link is written where it points (the
    rename replaced the link itself: `--json /dev/stdout` made, as root, the system's /dev/stdout a plain file),
    and what is no plain file there (a terminal, a pipe) is written into as it is."""
    in_place = path.exists() and not path.is_file()  # followed as the system follows it (/dev/stdout to a pipe)
    target = path if in_place or not path.is_symlink() else Path(os.path.realpath(path))
    partial = partial_path(target)
    try:
        if in_place:
            write(target)
        else:
            write(partial)
            os.replace(partial, target)
    except OSError as exc:
        if not in_place:
            partial.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:  # a second Ctrl-C or SIGTERM mid-write: no .part file left beside the report
        if not in_place:
            partial.unlink(missing_ok=True)
        raise


def glob_matches(pattern: str) -> list[str] | None:
    """The files `pattern` matches, sorted as a shell gives them, where no shell expanded it (Windows' cmd and
    PowerShell pass `clips/*.mp4` as it is, and so does a quoted one); None where it is a name as it stands: no
    *, ? or [..] in it, or a file or folder of that very name (`take [1].mp4`). [] where it matches nothing."""
    if not glob.has_magic(pattern) or os.path.lexists(os.path.expanduser(pattern)):
        return None
    return sorted(glob.glob(os.path.expanduser(pattern)))


def other_case_matches(pattern: str) -> list[str]:
    """The files `pattern` would match were case no matter (`*.jpg` and a camera's IMG_0001.JPG), where its folder
    part is a plain name: for a hint where it matches nothing, as names differing in case are different here."""
    folder, name = os.path.split(os.path.expanduser(pattern))
    if glob.has_magic(folder) or not os.path.isdir(folder or "."):
        return []
    wanted = name.lower()
    return sorted(os.path.join(folder, entry) for entry in os.listdir(folder or ".")
                  if fnmatch.fnmatchcase(entry.lower(), wanted))


# What a camera roll or a photo folder holds beside its photos and videos, by the name's end (in lower case): no
# picture, so a pattern over the folder (`roll/*`) leaves them out where each was a failed input ("cannot read
# video"). Each: (the kind, counted in the line that leaves them out; what it is; the fix where it is named alone).
SIDECARS = {
    ".aae": ("iPhone edit sidecar", "an iPhone edit sidecar (XML)", "give the photo or video it belongs to"),
    ".xmp": ("XMP sidecar", "an XMP metadata sidecar (an editor's settings)", "give the photo it describes"),
    ".thm": ("thumbnail sidecar", "a camera's thumbnail sidecar (a small copy of a video's first picture)",
             "give the video it belongs to"),
    ".json": ("JSON metadata file", "a JSON metadata file (Google Takeout writes one beside each photo)",
              "give the photo or video it describes"),
    # a film's subtitles, or a DJI drone's or action camera's flight/telemetry log, beside the video of its name
    **{end: ("subtitle file", f"a subtitle file ({kind}; a DJI drone writes its flight data as one beside each "
                              f"video)", "give the video it belongs to")
       for end, kind in ((".srt", "SubRip"), (".vtt", "WebVTT"), (".ass", "Advanced SubStation"))},
    ".txt": ("text file", "a text file", "give a photo or video"),
    ".ds_store": (".DS_Store file", "macOS's folder view settings (.DS_Store)", "give a photo or video"),
    "thumbs.db": ("Thumbs.db file", "Windows' thumbnail cache (Thumbs.db)", "give a photo or video"),
    "desktop.ini": ("desktop.ini file", "Windows' folder settings (desktop.ini)", "give a photo or video"),
}


def roll_extra(path: str) -> tuple[str, str, str] | None:
    """What `path` is where it is no photo or video but what a camera roll holds beside them (a folder, a
    sidecar, a system's file): (kind, what it is, the fix), as in SIDECARS; None for anything else. Told
    from the name (in any case: IMG_0001.AAE), but a folder, whatever its name, from the file system."""
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        return "folder", "a folder", f"give {os.path.join(path.rstrip('/' + os.sep), '*')} for the files in it"
    if not os.path.lexists(full):  # not found (or a name too long to be anything): the input's opening says so
        return None
    name = os.path.basename(os.path.normpath(full))
    if name.startswith("._") and len(name) > 2:  # written by macOS onto a disk that has no place for it (FAT)
        return ("AppleDouble file", f"an AppleDouble file (macOS's extra data for {name[2:]})",
                f"give {os.path.join(os.path.dirname(path), name[2:])} itself")
    lower = name.lower()
    # ".aae" ends a name; "thumbs.db" is the whole of one
    return next((kind for end, kind in SIDECARS.items() if lower == end or end[0] == "." and lower.endswith(end)),
                None)


def companions(path: str) -> list[str]:
    """The photos or videos beside a sidecar that it belongs to, by the name before its first dot (IMG_0001.AAE:
    IMG_0001.HEIC; Google Takeout's IMG_0001.JPG.json: IMG_0001.JPG), in any case; sorted."""
    folder, name = os.path.split(path)
    stem = name.split(".")[0].lower()
    if not stem:  # .DS_Store belongs to no file
        return []
    try:
        names = os.listdir(os.path.expanduser(folder) or ".")
    except OSError:
        return []
    return sorted(os.path.join(folder, other) for other in names if other != name and other.split(".")[0].lower()
                  == stem and os.path.isfile(os.path.join(os.path.expanduser(folder) or ".", other))
                  and roll_extra(os.path.join(folder, other)) is None)
