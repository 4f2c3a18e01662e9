"""Download and unpack the paper's benchmarks (Oxford5k, Paris6k, Holidays, Flickr100k, ...).

Files go under a data root (env ``SELCONV_DATA`` or ``<repo>/datasets``) in the layout that
:mod:`selconv_lite.data.datasets` reads::

    <root>/_archives/            downloaded archives (kept; a placed archive is used as is)
    <root>/oxford5k/jpg/ gt/ gnd_oxford5k.pkl
    <root>/paris6k/jpg/  gt/ gnd_paris6k.pkl
    <root>/roxford5k/gnd_roxford5k.pkl      <root>/rparis6k/gnd_rparis6k.pkl
    <root>/flickr100k/                      (Oxford105k / Paris106k distractors, Holidays training)
    <root>/holidays/jpg/  rotated/
    <root>/copydays/original/ crop/ jpeg/ strong/
    <root>/ukbench/

Downloads go over https where the host offers it, resume (HTTP Range on a ``.part`` file),
show a tqdm progress bar and are checked against a SHA-256 where one is known
(:data:`KNOWN_SHA256`; none of the official sites publishes digests, see
``docs/reliability.md``). Otherwise the digest is recorded next to the file as
``<file>.sha256`` -- only once the file has been used successfully (unpacked, or read) -- and
checked on every later use, so a file that changes afterwards is caught; a file that fails to
unpack is never recorded nor marked unpacked. Without network access a download fails
at once with :class:`OfflineError`, whose message says where to put the files by hand; set
``SELCONV_OFFLINE=1`` to skip even the attempt. Archives placed by hand in
``<root>/_archives/`` are unpacked without any network access.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..core.files import file_digest
from .datasets import dataset_key
from .loaders import default_data_root

__all__ = [
    "Resource",
    "RESOURCES",
    "KNOWN_SHA256",
    "DownloadError",
    "OfflineError",
    "ChecksumError",
    "download_file",
    "unpack_archive",
    "download_dataset",
    "manual_instructions",
]

OX = "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings"
PA = "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings"
CNN = "https://cmp.felk.cvut.cz/cnnimageretrieval/data/test"
ROP = "https://cmp.felk.cvut.cz/revisitop/data/datasets"
#: the INRIA host is not known to serve https; its archives are only unpacked (tar members
#: are confined to the destination folder) and decoded as images, never executed
INRIA = "http://pascal.inrialpes.fr/data/holidays"


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    Attributes
    ----------
    url : str
    filename : str
        Name of the archive/file in ``<root>/_archives`` (or at ``dest`` when not unpacked).
    dest : str
        Folder, relative to the root, to unpack into (or to copy the file into).
    unpack : bool
        Unpack the archive (tar/tgz/zip/rar) into ``dest``; else copy the file there.
    """

    url: str
    filename: str
    dest: str
    unpack: bool = True


def _flickr_parts():
    return [Resource(f"{OX}/ox100k/oxc1_100k.part{i:02d}.rar", f"oxc1_100k.part{i:02d}.rar",
                     "flickr100k", unpack=(i == 1)) for i in range(1, 41)]


_OXFORD = [
    Resource(f"{OX}/oxbuild_images-v1.tgz", "oxbuild_images-v1.tgz", "oxford5k/jpg"),
    Resource(f"{OX}/gt_files_170407.tgz", "gt_files_170407.tgz", "oxford5k/gt"),
    Resource(f"{CNN}/oxford5k/gnd_oxford5k.pkl", "gnd_oxford5k.pkl", "oxford5k", unpack=False),
]
_PARIS = [
    Resource(f"{PA}/paris_1-v1.tgz", "paris_1-v1.tgz", "paris6k/jpg"),
    Resource(f"{PA}/paris_2-v1.tgz", "paris_2-v1.tgz", "paris6k/jpg"),
    Resource(f"{PA}/paris_120310.tgz", "paris_120310.tgz", "paris6k/gt"),
    Resource(f"{CNN}/paris6k/gnd_paris6k.pkl", "gnd_paris6k.pkl", "paris6k", unpack=False),
]
_HOLIDAYS = [
    Resource(f"{INRIA}/jpg1.tar.gz", "holidays_jpg1.tar.gz", "holidays/jpg"),
    Resource(f"{INRIA}/jpg2.tar.gz", "holidays_jpg2.tar.gz", "holidays/jpg"),
]

#: dataset name -> the resources it needs (held-out sets included, Sec. 5.1)
RESOURCES: dict[str, list[Resource]] = {
    "oxford5k": _OXFORD + _PARIS,
    "paris6k": _PARIS + _OXFORD,
    "roxford5k": _OXFORD + _PARIS + [
        Resource(f"{ROP}/roxford5k/gnd_roxford5k.pkl", "gnd_roxford5k.pkl", "roxford5k", unpack=False)],
    "rparis6k": _PARIS + _OXFORD + [
        Resource(f"{ROP}/rparis6k/gnd_rparis6k.pkl", "gnd_rparis6k.pkl", "rparis6k", unpack=False)],
    "flickr100k": _flickr_parts(),
    "roxford105k": _OXFORD + _PARIS + [
        Resource(f"{ROP}/roxford5k/gnd_roxford5k.pkl", "gnd_roxford5k.pkl", "roxford5k",
                 unpack=False)] + _flickr_parts(),
    "rparis106k": _PARIS + _OXFORD + [
        Resource(f"{ROP}/rparis6k/gnd_rparis6k.pkl", "gnd_rparis6k.pkl", "rparis6k",
                 unpack=False)] + _flickr_parts(),
    "oxford105k": _OXFORD + _PARIS + _flickr_parts(),
    "paris106k": _PARIS + _OXFORD + _flickr_parts(),
    "holidays": _HOLIDAYS + _flickr_parts(),
    "holidays_rotated": _HOLIDAYS + [
        Resource("https://www.dropbox.com/s/f1z8pgzhkf52tcb/holidays_rotated.tar.gz?dl=1",
                 "holidays_rotated.tar.gz", "holidays/rotated")] + _flickr_parts(),
    "copydays": [Resource(f"{INRIA}/copydays_{p}.tar.gz", f"copydays_{p}.tar.gz",
                          f"copydays/{'original' if p == 'original' else p}")
                 for p in ("original", "crop", "jpeg", "strong")],
    "ukbench": [Resource("https://archive.org/download/ukbench/ukbench.zip", "ukbench.zip", "ukbench")],
}

#: filename -> sha256, for files whose publisher's bytes are known in advance. None of the
#: hosts publishes digests and none is pinned here (docs/reliability.md says so file by file);
#: the ground-truth pickles are read with a restricted unpickler whatever their bytes.
KNOWN_SHA256: dict[str, str] = {}


class DownloadError(RuntimeError):
    """A download failed (HTTP error, incomplete transfer, unpacking problem)."""


class OfflineError(DownloadError):
    """The network cannot be reached; the message says where to place the files by hand."""


class ChecksumError(DownloadError):
    """A file's SHA-256 differs from the expected one."""


def _offline_message(url: str, dest: Path, reason: str) -> str:
    return (f"cannot download {url} ({reason}). You seem to be offline. Download it on a "
            f"machine with network access and place it at {dest} (archives may also be "
            f"unpacked by hand into the layout described in docs/datasets.md); then run the "
            f"same call again -- a file that is already there is not downloaded.")


def download_file(url: str, dest, sha256: str | None = None, resume: bool = True,
                  progress: bool = True, timeout: float = 15.0, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` with resume, a progress bar and an optional checksum.

    Bytes go to ``dest + ".part"``; an existing ``.part`` is continued with an HTTP Range
    request (restarted when the server ignores it). The file is renamed to ``dest`` only
    when complete and, if ``sha256`` is given, verified.

    Parameters
    ----------
    url : str
    dest : str or Path
    sha256 : str, optional
        Expected SHA-256 hex digest.
    resume : bool, default True
    progress : bool, default True
        Show a tqdm progress bar.
    timeout : float, default 15
        Socket timeout in seconds.
    chunk : int
        Read size in bytes.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    OfflineError
        No network (or ``SELCONV_OFFLINE`` is set); raised before any byte is written.
    ChecksumError
        The digest differs (the bad file is kept as ``dest + ".corrupt"``).
    DownloadError
        HTTP error or a truncated transfer (run again to resume).
    """
    dest = Path(dest)
    if dest.is_file():
        if sha256 and file_digest(dest) != sha256:
            raise ChecksumError(f"{dest} exists but its SHA-256 is {file_digest(dest)}, not the "
                                f"expected {sha256}; delete it and retry")
        return dest
    if os.environ.get("SELCONV_OFFLINE", "").strip() not in ("", "0"):
        raise OfflineError(_offline_message(url, dest, "SELCONV_OFFLINE is set"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if (resume and part.is_file()) else 0
    headers = {"User-Agent": "selconv_lite-downloader"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # range not satisfiable: the .part is already complete
            resp = None
        else:
            raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OfflineError(_offline_message(url, dest, str(reason))) from e

    if resp is not None:
        with resp:
            status = getattr(resp, "status", None) or resp.getcode()
            if start and status != 206:
                start = 0  # the server ignored the Range header: start again
            length = resp.headers.get("Content-Length")
            total = int(length) + start if length is not None else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, initial=start, unit="B", unit_scale=True,
                           unit_divisor=1024, desc=dest.name)
            try:
                with open(part, "ab" if start else "wb") as f:
                    while True:
                        try:
                            block = resp.read(chunk)
                        except (socket.timeout, TimeoutError, ConnectionError, OSError) as e:
                            raise DownloadError(
                                f"transfer of {url} interrupted ({e}); run again to resume from "
                                f"{part.stat().st_size if part.exists() else 0} bytes") from e
                        if not block:
                            break
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
            got = part.stat().st_size
            if total is not None and got != total:
                raise DownloadError(f"incomplete download of {url}: {got} of {total} bytes; run "
                                    "again to resume")
    if sha256:
        digest = file_digest(part)
        if digest != sha256:
            bad = dest.with_name(dest.name + ".corrupt")
            os.replace(part, bad)
            raise ChecksumError(f"SHA-256 of {url} is {digest}, expected {sha256}; the file was "
                                f"kept as {bad}")
    os.replace(part, dest)
    return dest


def _safe_members(t: tarfile.TarFile, dest: Path):
    """Regular files and folders of a tar whose paths stay inside ``dest`` (links are skipped)."""
    root = str(dest.resolve())
    for m in t.getmembers():
        if m.issym() or m.islnk() or m.isdev():
            continue
        if not str((dest / m.name).resolve()).startswith(root):
            raise DownloadError(f"refusing to unpack {m.name!r}: it points outside {dest}")
        yield m


def unpack_archive(archive, dest) -> Path:
    """Unpack a .tar/.tgz/.tar.gz/.zip (Python) or .rar (needs ``unrar``, ``7z`` or ``bsdtar``).

    Parameters
    ----------
    archive : str or Path
    dest : str or Path
        Folder to unpack into (created).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        The archive is damaged, empty, or has a member that would land outside ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    n_files = None  # unknown for RAR (an external tool unpacks it)
    try:
        if name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")):
            with tarfile.open(archive) as t:
                kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                members = list(_safe_members(t, dest))
                n_files = sum(m.isfile() for m in members)
                t.extractall(dest, members=members, **kw)
        elif name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for n in z.namelist():
                    if not str((dest / n).resolve()).startswith(str(dest.resolve())):
                        raise DownloadError(f"refusing to unpack {n!r}: it points outside {dest}")
                n_files = sum(not i.is_dir() for i in z.infolist())
                z.extractall(dest)
        elif name.endswith(".rar"):
            commands = {
                "unrar": lambda exe: [exe, "x", "-o+", "-idq", str(archive), str(dest) + os.sep],
                "7z": lambda exe: [exe, "x", "-y", f"-o{dest}", str(archive)],
                "bsdtar": lambda exe: [exe, "-xf", str(archive), "-C", str(dest)],
            }
            for tool, make_cmd in commands.items():
                exe = shutil.which(tool)
                if exe:
                    subprocess.run(make_cmd(exe), check=True)
                    break
            else:
                raise DownloadError(
                    f"{archive} is a RAR archive and none of unrar, 7z, bsdtar is installed; "
                    f"install one (e.g. 'apt-get install unrar' or 'p7zip-full') or unpack it by "
                    f"hand into {dest}")
        else:
            raise DownloadError(f"do not know how to unpack {archive}")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, subprocess.CalledProcessError) as e:
        reason = " ".join(str(e).split())
        raise DownloadError(f"cannot unpack {archive} ({reason}); delete it and download again (no "
                            f"checksum was recorded for it, so a good copy placed there is "
                            f"accepted)") from e
    if n_files == 0:
        raise DownloadError(f"{archive} holds no file to unpack (an empty archive); delete it and "
                            "download again (it was not marked unpacked and no checksum was "
                            "recorded for it)")
    return dest


def _check_ground_truth(path: Path) -> None:
    """Read a downloaded ground-truth pickle (restricted unpickler) before recording it."""
    from .groundtruth import GroundTruthError, read_gnd_pickle

    try:
        read_gnd_pickle(path, allow_empty_positives=True)
    except GroundTruthError as e:
        raise DownloadError(f"{e}\nThe downloaded file {path} is not a valid ground truth; it was "
                            "not recorded. Delete it and download again (or place a good copy "
                            "there).") from e


def manual_instructions(name: str, root=None) -> str:
    """Text saying which files to fetch by hand and where to put them for dataset ``name``."""
    name = dataset_key(name, RESOURCES)
    root = Path(root) if root is not None else default_data_root()
    seen, lines = set(), [f"To install {name} by hand under {root}:"]
    for r in RESOURCES[name]:
        if r.filename in seen:
            continue
        seen.add(r.filename)
        if r.unpack:
            lines.append(f"  {r.url}\n      -> {root / '_archives' / r.filename}  "
                         f"(or unpack it into {root / r.dest})")
        else:
            lines.append(f"  {r.url}\n      -> {root / r.dest / r.filename}")
    lines.append(f"then call selconv_lite.data.download.download_dataset({name!r}, root={str(root)!r}) "
                 "to unpack what is placed (no network needed), and load_dataset().")
    return "\n".join(lines)


def download_dataset(name: str, root=None, progress: bool = True, unpack: bool = True,
                     timeout: float = 15.0) -> Path:
    """Fetch (or take from ``<root>/_archives``) and unpack everything dataset ``name`` needs.

    Parameters
    ----------
    name : str
        A key of :data:`RESOURCES` (``oxford5k``, ``paris6k``, ``roxford5k``, ``rparis6k``,
        ``oxford105k``, ``paris106k``, ``flickr100k``, ``holidays``, ``holidays_rotated``,
        ``copydays``, ``ukbench``). The held-out learning set is included.
    root : str or Path, optional
        Data root (default env ``SELCONV_DATA`` or ``<repo>/datasets``).
    progress : bool, default True
    unpack : bool, default True
    timeout : float, default 15

    Returns
    -------
    Path
        The root.

    Raises
    ------
    OfflineError
        With :func:`manual_instructions` appended.
    """
    key = dataset_key(name, RESOURCES)
    root = Path(root) if root is not None else default_data_root()
    arch = root / "_archives"
    done = set()
    for r in RESOURCES[key]:
        if r.filename in done:
            continue
        done.add(r.filename)
        marker = root / r.dest / f".unpacked_{r.filename}"
        target = (arch / r.filename) if r.unpack else (root / r.dest / r.filename)
        side = target.with_name(target.name + ".sha256")
        if marker.is_file() or (not r.unpack and target.is_file() and side.is_file()):
            continue
        sha = KNOWN_SHA256.get(r.filename)
        recorded = sha is None and side.is_file()
        if recorded:
            sha = side.read_text().split()[0]
        try:
            download_file(r.url, target, sha256=sha, progress=progress, timeout=timeout)
        except OfflineError as e:
            raise OfflineError(f"{e}\n\n{manual_instructions(key, root)}") from None
        except ChecksumError as e:
            if not recorded:
                raise
            raise ChecksumError(
                f"{e}\nThe expected digest was recorded in {side} when {target.name} was first "
                f"used successfully. If you replaced {target} on purpose with a good copy, delete "
                f"{side} as well; then run the same call again.") from None
        if r.unpack and unpack and not r.filename.endswith(".rar"):
            unpack_archive(target, root / r.dest)
            marker.write_text("ok\n")
        elif not r.unpack and target.suffix == ".pkl":
            _check_ground_truth(target)
        if not side.is_file() and (not r.unpack or marker.is_file()):
            side.write_text(f"{file_digest(target)}  {target.name}\n")
    # multi-part RAR (Flickr100k): unpacking part01 reads all parts, so do it once at the end
    first = next((r for r in RESOURCES[key] if r.filename.endswith(".part01.rar")), None)
    if unpack and first is not None:
        marker = root / first.dest / f".unpacked_{first.filename}"
        if not marker.is_file():
            unpack_archive(arch / first.filename, root / first.dest)
            marker.write_text("ok\n")
        for r in RESOURCES[key]:
            part = arch / r.filename
            side = part.with_name(part.name + ".sha256")
            if r.filename.endswith(".rar") and part.is_file() and not side.is_file():
                side.write_text(f"{file_digest(part)}  {part.name}\n")
    return root
