"""Where imported files come from: a folder, a zip archive, or files uploaded to the API.

A `FileSet` lists file names and reads one file's bytes at a time (so an import never holds a
whole dataset in memory). Problems found while opening a set (a name that climbs out of the
archive, a member that is too big, a file that is not of the expected kind) are kept in
`problems` for the import's up-front report, never raised one by one.
"""

import io
import stat
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
PNG_SUFFIXES = (".png",)
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "BMP", "GIF", "WEBP"})
# Guards against archives that would fill the disk or the memory (zip bombs).
MAX_MEMBERS = 100_000
MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 8 * 2**30
MAX_COMPRESSION_RATIO = 200
MAX_JSON_BYTES = 1 * 2**30


@dataclass(frozen=True)
class JsonFile:
    """One uploaded or named JSON document, not parsed yet."""

    name: str
    data: bytes


class Upload(Protocol):
    """What the import needs of an uploaded file (Django's UploadedFile has it)."""

    name: str
    size: int

    def read(self, size: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...


def _skipped(name: str) -> bool:
    """Files that archivers and desktops add beside the data: hidden files, macOS forks."""
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or any(
        part.startswith(".") and part not in (".", "..") for part in parts
    ))


def unsafe_name(name: str) -> str | None:
    """Why a member name could write outside its folder (zip slip), or None when it is safe."""
    path = PurePosixPath(name)
    if "\x00" in name or "\\" in name:
        return "has a backslash or NUL in its name"
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return "has a path that leaves the archive"
    if len(name) > 200:
        return "has a name longer than 200 characters"
    return None


def plain_member_name(name: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> bool:
    """Whether a file of this name goes into an archive and comes back out of it as it is:
    safe, not skipped as a hidden file, and of one of the kinds `suffixes` names."""
    return (unsafe_name(name) is None and not _skipped(name)
            and name.lower().endswith(suffixes))


class FileSet:
    """Named files of one kind (`suffixes`), read one at a time."""

    def __init__(self, label: str, suffixes: tuple[str, ...]) -> None:
        self.label = label
        self.suffixes = suffixes
        self.problems: list[str] = []
        self._names: list[str] = []

    def names(self) -> list[str]:
        return list(self._names)

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def max_bytes(self, name: str) -> int:
        """The largest file of this name the set takes."""
        return MAX_FILE_BYTES

    def _accept(self, name: str, size: int) -> bool:
        """Record the name when it is a file of the expected kind, else a problem."""
        if (reason := unsafe_name(name)) is not None:
            self.problems.append(f"{name}: {reason}.")
        elif not name.lower().endswith(self.suffixes):
            self.problems.append(
                f"{name}: not an expected file (allowed: {', '.join(self.suffixes)})."
            )
        elif size > (limit := self.max_bytes(name)):
            self.problems.append(f"{name}: {size:,} bytes, over the {limit:,} limit.")
        else:
            self._names.append(name)
            return True
        return False


class FolderFileSet(FileSet):
    """Every file under a folder (names relative to it, with "/" between parts)."""

    def __init__(self, root: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
        super().__init__(root.name or str(root), suffixes)
        self.root = root.resolve()
        for path in sorted(self.root.rglob("*")):
            name = path.relative_to(self.root).as_posix()
            if path.is_dir() or _skipped(name):
                continue
            if not path.resolve().is_relative_to(self.root):
                self.problems.append(f"{name}: a link that leaves the folder.")
                continue
            self._accept(name, path.stat().st_size)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


class ZipFileSet(FileSet):
    """The members of a zip archive; a single top folder that holds everything is dropped
    from the names (zipping a folder makes one)."""

    def __init__(self, label: str, file: "str | Path | BinaryIO | Upload",
                 suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
        super().__init__(label, suffixes)
        self._members: dict[str, zipfile.ZipInfo] = {}
        try:
            self._zip = zipfile.ZipFile(file)  # type: ignore[arg-type]
            infos = [info for info in self._zip.infolist()
                     if not info.is_dir() and not _skipped(info.filename)]
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as error:
            self.problems.append(f"not a readable zip archive ({error}).")
            return
        if len(infos) > MAX_MEMBERS:
            self.problems.append(f"{len(infos):,} files, over the {MAX_MEMBERS:,} limit.")
            return
        total = sum(info.file_size for info in infos)
        if total > MAX_TOTAL_BYTES:
            self.problems.append(
                f"{total:,} bytes unpacked, over the {MAX_TOTAL_BYTES:,} limit."
            )
            return
        tops = {PurePosixPath(info.filename).parts[0] for info in infos}
        strip = len(tops) == 1 and all("/" in info.filename for info in infos)
        for info in infos:
            name = info.filename.split("/", 1)[1] if strip else info.filename
            if (reason := unsafe_name(info.filename)) is not None:
                self.problems.append(f"{info.filename}: {reason}.")
            elif stat.S_ISLNK(info.external_attr >> 16):
                self.problems.append(f"{info.filename}: a symbolic link, not a file.")
            elif info.flag_bits & 0x1:
                self.problems.append(f"{info.filename}: encrypted.")
            elif info.compress_size and info.file_size / info.compress_size > (
                MAX_COMPRESSION_RATIO
            ):
                self.problems.append(
                    f"{info.filename}: compressed {info.file_size // info.compress_size}:1, "
                    "which looks like a zip bomb."
                )
            elif self._accept(name, info.file_size):
                self._members[name] = info

    def read(self, name: str) -> bytes:
        """The member's bytes; ValueError when it does not unpack (a bad CRC, a size its
        header understates, a broken stream, a method zipfile lacks) or unpacks too big."""
        # Read at most the limit, whatever the header claims the size is.
        limit = self.max_bytes(name)
        try:
            with self._zip.open(self._members[name]) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError) as error:
            raise ValueError(f"cannot be unpacked ({error})") from None
        if len(data) > limit:
            raise ValueError(f"over the {limit:,} byte limit once unpacked")
        return data


class UploadedFileSet(FileSet):
    """Files uploaded side by side in one multipart field."""

    def __init__(self, label: str, uploads: Iterable[Upload],
                 suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
        super().__init__(label, suffixes)
        self._uploads: dict[str, Upload] = {}
        for upload in uploads:
            if upload.name in self._uploads:
                self.problems.append(f"{upload.name}: uploaded twice.")
            elif self._accept(upload.name, upload.size):
                self._uploads[upload.name] = upload

    def read(self, name: str) -> bytes:
        upload = self._uploads[name]
        upload.seek(0)
        return upload.read()


def file_set_from_path(path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> FileSet:
    """A folder or a .zip file on disk (the management command's arguments)."""
    if path.is_dir():
        return FolderFileSet(path, suffixes)
    return ZipFileSet(path.name, path, suffixes)


def file_set_from_uploads(
    label: str, uploads: list[Upload], suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> FileSet:
    """One uploaded zip archive, or the files themselves."""
    if len(uploads) == 1 and uploads[0].name.lower().endswith(".zip"):
        uploads[0].seek(0)
        return ZipFileSet(uploads[0].name, uploads[0], suffixes)
    return UploadedFileSet(label, uploads, suffixes)


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of an image file, after decoding it fully; ValueError says why not."""
    with warnings.catch_warnings():
        # Pillow only warns below twice its pixel limit; an import refuses those images too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind, size = image.format, image.size
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # verify() does not decode the pixels; a truncated file fails here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError("too many pixels (a decompression bomb?)") from None
        except UnidentifiedImageError:
            raise ValueError("cannot be read as an image (not a format Pillow knows)") from None
        # Pillow raises many types for broken files (OSError, SyntaxError, struct.error, ...).
        except Exception as error:
            raise ValueError(f"cannot be read as an image ({error})") from None
    if kind not in IMAGE_FORMATS:
        raise ValueError(f"a {kind} image; expected one of {', '.join(sorted(IMAGE_FORMATS))}")
    return size
