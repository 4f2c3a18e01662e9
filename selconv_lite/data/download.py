"""Download and unpack the paper's benchmarks (Oxford5k, Paris6k, Holidays, Flickr100k, ...).

Files go under a data root (env ``SELCONV_DATA`` or ``<repo>/datasets``) in the layout that
:mod:`selconv_lite.data.datasets` reads::

    <root>/_archives/            downloaded archives (kept; a placed archive is used as is)
    <root>/oxford5k/jpg/ gt/ gnd_oxford5k.pkl
    <root>/paris6k/jpg/  gt/ gnd_paris6k.pkl
    <root>/roxford5k/gnd_roxford5k.pkl      <root>/rparis6k/gnd_rparis6k.pkl
    <root>/flickr100k/                      (Oxford105k / Paris106k distractors, Holidays training)
    <root>/revisitop1m/jpg/ revisitop1m.txt (R1M: the revisited protocol's 1M distractors)
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
    "DISTRACTOR_SETS",
    "MEASURED_SECONDS_PER_IMAGE",
    "distractor_info",
    "distractor_paths",
    "remote_sizes",
]

OX = "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings"
PA = "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings"
CNN = "https://cmp.felk.cvut.cz/cnnimageretrieval/data/test"
ROP = "https://cmp.felk.cvut.cz/revisitop/data/datasets"
#: R1M's host, as in the revisitop project's own download.py (dataset page:
#: http://cmp.felk.cvut.cz/revisitop/); http only
R1M = "http://ptak.felk.cvut.cz/revisitop/revisitop1m"
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
    keep : bool
        Keep the archive after a successful unpacking (False for R1M's 100 archives, which
        would double its disk use; the unpacked marker stops a second download).
    """

    url: str
    filename: str
    dest: str
    unpack: bool = True
    keep: bool = True


def _flickr_parts():
    """Flickr100k: 40 parts of one RAR archive, all in ``_archives`` (unrar reads part02 ...
    part40 next to part01); unpacked once, from part01, after the last part has arrived."""
    return [Resource(f"{OX}/ox100k/oxc1_100k.part{i:02d}.rar", f"oxc1_100k.part{i:02d}.rar",
                     "flickr100k") for i in range(1, 41)]


def _r1m_resources(n_parts=100):
    """R1M: ``revisitop1m.1.tar.gz`` ... ``revisitop1m.100.tar.gz`` unpacked into
    ``revisitop1m/jpg`` (each deleted once unpacked), and the image list ``revisitop1m.txt``."""
    return [Resource(f"{R1M}/jpg/revisitop1m.{i}.tar.gz", f"revisitop1m.{i}.tar.gz",
                     "revisitop1m/jpg", keep=False) for i in range(1, n_parts + 1)] + [
        Resource(f"{R1M}/revisitop1m.txt", "revisitop1m.txt", "revisitop1m", unpack=False)]


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
    # distractors alone: add them to a database loaded with load_dataset("roxford5k") etc.
    "revisitop1m": _r1m_resources(),
    "r1m": _r1m_resources(),
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
        if ".part" in r.filename and r.filename.endswith(".rar") and (
                root / r.dest / f".unpacked_{r.filename.split('.part')[0]}.part01.rar").is_file():
            continue  # a later part of a multi-part RAR that is already unpacked
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
        if r.unpack and not r.keep and marker.is_file():
            # the marker records the unpacking (and the side file its digest): the archive can go
            target.unlink()
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


# ------------------------------------------------------------------------------ distractor sets
#: Seconds per image measured for extraction + encoding (``benchmarks/`` and notebook 08);
#: the expected hours of :func:`distractor_info` are images x these / 3600.
MEASURED_SECONDS_PER_IMAGE: dict[str, tuple[float, str]] = {
    "cpu_512px": (1.30, "streaming encoder, 1 process, 2 threads, max_dim 512: the fastest of "
                        "notebook 08's runs on a shared 2-core machine (1.3-2.6 s at loads 3.5-6)"),
    "cpu_1024px": (4.3, "extraction on 2 CPU cores at max_dim 1024, pool5 (3.4-4.3 s measured)"),
    "gpu_1024px_forward": (1 / 57.9, "VGG16 forward pass only, 1024x768, batch 1, one NVIDIA "
                                     "H200 (benchmarks/measured/gpu_extraction_h200.json)"),
    "gpu_1024px_with_io": (1 / 4.86, "one H200, cold feature-cache fill at 1024 px incl. JPEG "
                                     "decoding, SIFT and compressed writes of pool5 + conv4_3 "
                                     "(an upper bound for streaming, which writes no maps)"),
}

#: The distractor sets of the paper's large-scale protocols.
DISTRACTOR_SETS: dict[str, dict] = {
    "flickr100k": {
        "images": 100_071, "archives": 40, "resource": "flickr100k", "folder": "flickr100k",
        "protocol": "Oxford105k / Paris106k (Philbin et al. 2007; paper Table 6)",
        "listing": f"{OX}/ox100k/", "format": "oxc1_100k.part01.rar ... part40.rar (multi-part RAR)",
    },
    "revisitop1m": {
        "images": 1_001_001, "archives": 100, "resource": "revisitop1m", "folder": "revisitop1m",
        "protocol": "R-Oxford / R-Paris + R1M (Radenovic et al. CVPR 2018)",
        "listing": f"{R1M}/", "format": "jpg/revisitop1m.1.tar.gz ... revisitop1m.100.tar.gz and "
                                       "the image list revisitop1m.txt (paths relative to jpg/)",
    },
}


def _distractor_key(name: str) -> str:
    key = str(name).lower().replace("-", "").replace("_", "").replace(" ", "")
    key = {"r1m": "revisitop1m", "flickr": "flickr100k", "oxford100k": "flickr100k"}.get(key, key)
    if key not in DISTRACTOR_SETS:
        raise KeyError(f"unknown distractor set {name!r}; choose from {', '.join(DISTRACTOR_SETS)} "
                       "(or 'r1m')")
    return key


def distractor_info(name: str, seconds_per_image=None) -> dict:
    """Size of a distractor set and the expected hours to encode it.

    Parameters
    ----------
    name : {"flickr100k", "revisitop1m" (or "r1m")}
    seconds_per_image : dict, optional
        ``{setting: seconds}`` (default :data:`MEASURED_SECONDS_PER_IMAGE`).

    Returns
    -------
    dict
        The entry of :data:`DISTRACTOR_SETS` plus ``"hours"`` (``{setting: hours}`` for one
        machine / one GPU), ``"vectors_GB_D1024"`` (float32 final vectors, D = 1024) and
        ``"pq64_MB"`` (64-byte PQ codes). The archives' sizes are not published by the hosts:
        :func:`remote_sizes` asks them (online).
    """
    key = _distractor_key(name)
    info = dict(DISTRACTOR_SETS[key], name=key)
    sec = seconds_per_image or {k: v[0] for k, v in MEASURED_SECONDS_PER_IMAGE.items()}
    n = info["images"]
    info["hours"] = {k: n * float(s) / 3600.0 for k, s in sec.items()}
    info["vectors_GB_D1024"] = n * 4096 / 1e9
    info["pq64_MB"] = n * 64 / 1e6
    return info


def remote_sizes(name: str, timeout: float = 15.0) -> dict[str, int | None]:
    """Bytes of each file of dataset or distractor set ``name``, from the hosts' HTTP headers
    (``HEAD`` requests; ``None`` where a host gives no length).

    Raises
    ------
    OfflineError
        The network cannot be reached (or ``SELCONV_OFFLINE`` is set).
    """
    key = dataset_key(name, RESOURCES)
    out: dict[str, int | None] = {}
    for r in RESOURCES[key]:
        if r.filename in out:
            continue
        if os.environ.get("SELCONV_OFFLINE", "").strip() not in ("", "0"):
            raise OfflineError(f"cannot ask {r.url} for its size: SELCONV_OFFLINE is set")
        req = urllib.request.Request(r.url, method="HEAD",
                                     headers={"User-Agent": "selconv_lite-downloader"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
        except urllib.error.HTTPError as e:
            raise DownloadError(f"cannot ask {r.url} for its size: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
            raise OfflineError(f"cannot ask {r.url} for its size ({getattr(e, 'reason', e)}); "
                               "you seem to be offline") from e
        out[r.filename] = int(length) if length is not None else None
    return out


def distractor_paths(name: str, root=None) -> list[str]:
    """Image paths of a downloaded distractor set, in the official order.

    ``revisitop1m``: the entries of ``<root>/revisitop1m/revisitop1m.txt`` under
    ``<root>/revisitop1m/jpg`` (``.jpg`` appended to an entry without extension, as the
    revisitop code does). ``flickr100k``: every ``.jpg`` under ``<root>/flickr100k``, sorted.

    Raises
    ------
    FileNotFoundError
        The set is not on disk (the message gives the :func:`download_dataset` call), or the
        list names an image that is missing (the first few are named).
    """
    key = _distractor_key(name)
    root = Path(root) if root is not None else default_data_root()
    folder = root / DISTRACTOR_SETS[key]["folder"]
    how = (f"download it with selconv_lite.data.download.download_dataset({key!r}, root={str(root)!r}) "
           f"(needs the internet; {DISTRACTOR_SETS[key]['images']:,} images) or place it by hand:\n"
           f"{manual_instructions(key, root)}")
    if key == "flickr100k":
        paths = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
        if not paths:
            raise FileNotFoundError(f"no Flickr100k image under {folder}; {how}")
        return paths
    listing = folder / "revisitop1m.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"the R1M image list {listing} is missing; {how}")
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    if not names:
        raise FileNotFoundError(f"the R1M image list {listing} is empty; delete it and {how}")
    paths = [str(folder / "jpg" / (n if Path(n).suffix else n + ".jpg")) for n in names]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the {len(paths)} images listed in {listing} are "
                                f"missing (e.g. {', '.join(missing[:3])}); run download_dataset("
                                f"{key!r}) again to fetch the archives not yet unpacked")
    return paths
