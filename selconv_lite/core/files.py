"""File helpers shared by every layer: one content hash and one repository-root rule.

* :func:`file_digest` -- the hex digest of a file's bytes (SHA-256 by default), read in
  chunks; the downloader, the weight-file check, the feature cache and the ground-truth leak
  check all hash files with it.
* :func:`find_repo_root` / :func:`repo_root` -- the selconv_lite checkout that holds the
  default folders (``data/default``, ``datasets/``, ``cache/``, ``notebooks/``): the nearest
  folder at or above the current directory with a ``pyproject.toml`` next to a
  ``selconv_lite`` package, else the checkout this package was imported from.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["file_digest", "find_repo_root", "repo_root"]


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
