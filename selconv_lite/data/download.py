"""The paper's benchmarks: what to download for each (a registry) and where it goes.

Files go under a data root (env ``SELCONV_DATA`` or ``<repo>/datasets``) in the layout that
:mod:`selconv_lite.data.loaders` reads::

    <root>/_archives/            downloaded archives (kept; a placed archive is used as is)
    <root>/oxford5k/jpg/ gt/ gnd_oxford5k.pkl
    <root>/paris6k/jpg/  gt/ gnd_paris6k.pkl
    <root>/roxford5k/gnd_roxford5k.pkl      <root>/rparis6k/gnd_rparis6k.pkl
    <root>/flickr100k/                      (Oxford105k / Paris106k distractors, Holidays training)
    <root>/revisitop1m/jpg/ revisitop1m.txt (R1M: the revisited protocol's 1M distractors)
    <root>/holidays/jpg/  rotated/
    <root>/copydays/original/ crop/ jpeg/ strong/
    <root>/ukbench/

The transfer itself is :mod:`selconv_lite.data.transfer` (https where the host offers it,
resume, a tqdm bar, a SHA-256 check where one is known in :data:`KNOWN_SHA256`; none of the
official sites publishes digests, see ``docs/reliability.md``). Otherwise the digest is
recorded next to the file as ``<file>.sha256`` -- only once the file has been used
successfully (unpacked, or read) -- and checked on every later use, so a file that changes
afterwards is caught; a file that fails to unpack is never recorded nor marked unpacked.
Without network access a download fails at once with
:class:`~selconv_lite.data.transfer.OfflineError`, whose message says where to put the files
by hand; set ``SELCONV_OFFLINE=1`` to skip even the attempt. Archives placed by hand in
``<root>/_archives/`` are unpacked without any network access. The distractor sets of the
large-scale protocols are listed in :data:`DISTRACTOR_SETS` (their encoding cost is
:func:`selconv_lite.scale.cost.distractor_info`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.files import file_digest
from .datasets import dataset_key
from .loaders import default_data_root
from .transfer import ChecksumError, DownloadError, OfflineError, download_file, remote_size, unpack_archive

__all__ = [
    "Resource",
    "RESOURCES",
    "KNOWN_SHA256",
    "download_dataset",
    "manual_instructions",
    "DISTRACTOR_SETS",
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
}

#: filename -> sha256, for files whose publisher's bytes are known in advance. None of the
#: hosts publishes digests and none is pinned here (docs/reliability.md says so file by file);
#: the ground-truth pickles are read with a restricted unpickler whatever their bytes.
KNOWN_SHA256: dict[str, str] = {}


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


def remote_sizes(name: str, timeout: float = 15.0) -> dict[str, int | None]:
    """Bytes of each file of dataset or distractor set ``name``, from the hosts' HTTP headers
    (:func:`~selconv_lite.data.transfer.remote_size`; ``None`` where a host gives no length).

    Raises
    ------
    OfflineError
        The network cannot be reached (or ``SELCONV_OFFLINE`` is set).
    """
    key = dataset_key(name, RESOURCES)
    out: dict[str, int | None] = {}
    for r in RESOURCES[key]:
        if r.filename not in out:
            out[r.filename] = remote_size(r.url, timeout=timeout)
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
    key = dataset_key(name, DISTRACTOR_SETS, what="distractor set")
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
