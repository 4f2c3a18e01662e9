"""Generic file transfer: download with resume and checksum, safe unpacking, remote sizes.

* :func:`download_file` -- one URL to one file over ``http(s)://`` or ``file://``: resume
  (HTTP Range on a ``.part`` file), a tqdm progress bar, a SHA-256 check (a full digest or its
  start), and :class:`OfflineError` at once without network (or with ``SELCONV_OFFLINE=1``);
* :func:`unpack_archive` -- tar / zip (members confined to the destination) and RAR (an
  external tool);
* :func:`remote_size` -- the ``Content-Length`` a host announces (HTTP ``HEAD``).

What to download for each dataset is :mod:`selconv_lite.data.download`'s registry.
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
from pathlib import Path

from ..core.files import file_digest

__all__ = ["DownloadError", "OfflineError", "ChecksumError", "offline", "download_file",
           "unpack_archive", "remote_size"]

#: The User-Agent of every request.
USER_AGENT = "selconv_lite-downloader"


def offline() -> bool:
    """True when env ``SELCONV_OFFLINE`` asks to skip every network attempt."""
    return os.environ.get("SELCONV_OFFLINE", "").strip() not in ("", "0")


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
    when complete and, if ``sha256`` is given, verified. Datasets
    (:func:`selconv_lite.data.download.download_dataset`) and fine-tuned weights
    (:func:`selconv_lite.experiments.finetune_weights.fetch_finetuned_trunk`) are fetched
    with it.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL.
    dest : str or Path
    sha256 : str, optional
        Expected SHA-256 hex digest, or its start (weights publishers put such a prefix in the
        file name, e.g. cirtorch's ``-b4dcdc6.pth``).
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
        ``dest``, the complete (and, with ``sha256``, verified) file.

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
        if sha256 and not file_digest(dest).startswith(sha256):
            raise ChecksumError(f"{dest} exists but its SHA-256 is {file_digest(dest)}, not the "
                                f"expected {sha256}{'...' if len(sha256) < 64 else ''}; delete it and retry")
        return dest
    if offline():
        raise OfflineError(_offline_message(url, dest, "SELCONV_OFFLINE is set"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if (resume and part.is_file()) else 0
    headers = {"User-Agent": USER_AGENT}
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
        if not digest.startswith(sha256):
            bad = dest.with_name(dest.name + ".corrupt")
            os.replace(part, bad)
            raise ChecksumError(f"SHA-256 of {url} is {digest}, expected {sha256}"
                                f"{'...' if len(sha256) < 64 else ''}: the file is corrupt or not the "
                                f"published one; it was kept as {bad}")
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


def remote_size(url: str, timeout: float = 15.0) -> int | None:
    """Bytes of the file at ``url`` from the host's ``Content-Length`` (an HTTP ``HEAD``
    request); ``None`` when the host gives no length.

    Raises
    ------
    OfflineError
        The network cannot be reached (or ``SELCONV_OFFLINE`` is set).
    DownloadError
        The host answers with an HTTP error.
    """
    if offline():
        raise OfflineError(f"cannot ask {url} for its size: SELCONV_OFFLINE is set")
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot ask {url} for its size: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        raise OfflineError(f"cannot ask {url} for its size ({getattr(e, 'reason', e)}); "
                           "you seem to be offline") from e
    return int(length) if length is not None else None
