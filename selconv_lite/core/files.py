"""File helpers shared by every layer: one content hash, one atomic write and one
repository-root rule.

* :func:`file_digest` -- the hex digest of a file's bytes (SHA-256 by default), read in
  chunks; the downloader, the weight-file check, the feature cache and the ground-truth leak
  check all hash files with it.
* :func:`atomic_write` -- write a file through a temporary file in the same folder that
  replaces the destination only once it is complete and on disk: the feature cache, the
  streaming encoder's shards, converted weight files and experiment records are written with it.
* :func:`find_repo_root` / :func:`repo_root` -- the selconv_lite checkout that holds the
  default folders (``data/default``, ``datasets/``, ``cache/``, ``notebooks/``): the nearest
  folder at or above the current directory with a ``pyproject.toml`` next to a
  ``selconv_lite`` package, else the checkout this package was imported from.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_digest", "atomic_write", "find_repo_root", "repo_root"]


def file_digest(path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of the bytes of the file ``path``.

    Parameters
    ----------
    path : str or Path
    algorithm : str, default "sha256"
        Any name :func:`hashlib.new` accepts (the feature cache keys entries by ``"sha1"``).
    chunk : int
        Read size in bytes.

    Returns
    -------
    str
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_write(path, mode: str = "wb", prefix: str | None = None, suffix: str = ".tmp",
                 encoding: str | None = None):
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    The temporary file is flushed and ``fsync``-ed before :func:`os.replace` puts it at
    ``path``, so a reader (or a crash) sees either the old file or the complete new one, never
    a partial write. If the ``with`` body raises, the temporary file is removed and ``path`` is
    left as it was.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    mode : {"wb", "w"}
        Binary or text.
    prefix, suffix : str
        Name of the temporary file (default prefix ``".<name>."``); callers that clean up
        files left by killed writers give a recognisable prefix.
    encoding : str, optional
        Text mode only (default UTF-8).

    Yields
    ------
    file object

    Examples
    --------
    >>> with atomic_write("record.json", "w") as fh:  # doctest: +SKIP
    ...     fh.write(text)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix if prefix is not None else f".{path.name}.", suffix=suffix,
                               dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding or "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "selconv_lite").is_dir()


def find_repo_root(start: str | os.PathLike | None = None) -> Path | None:
    """The selconv_lite checkout at or above ``start`` (default: the current directory).

    Falls back to the checkout this package was imported from (editable installs); ``None``
    when neither exists (an installed package run outside any checkout).
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder
    pkg_parent = Path(__file__).resolve().parents[2]
    if _is_checkout(pkg_parent):
        return pkg_parent
    return None


def repo_root() -> Path:
    """:func:`find_repo_root`, or the current directory outside any checkout."""
    return find_repo_root() or Path(os.getcwd()).resolve()
