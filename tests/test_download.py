"""Tests of selconv_lite.data.download with the network mocked (no test touches the network)."""
import email.message
import hashlib
import io
import tarfile
import time
import urllib.error
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from selconv_lite.core.files import file_digest
from selconv_lite.data import datasets as ds
from selconv_lite.data import download as dl
from selconv_lite.data import transfer as tr

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


class FakeResponse(io.BytesIO):
    def __init__(self, data, status=200):
        super().__init__(data)
        self.status = status
        self.headers = email.message.Message()
        self.headers["Content-Length"] = str(len(data))

    def getcode(self):
        return self.status


class FakeServer:
    """Serves bytes by URL and honours 'Range: bytes=N-'; records the requests."""

    def __init__(self, files, honour_range=True, truncate=None):
        self.files, self.honour_range, self.truncate, self.requests = files, honour_range, truncate, []

    def __call__(self, req, timeout=None):
        self.requests.append(req)
        data = self.files[req.full_url]
        rng = req.get_header("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            resp = FakeResponse(data[start:], status=206)
        else:
            resp = FakeResponse(data)
        if self.truncate:
            full = resp.headers["Content-Length"]
            resp = FakeResponse(resp.getvalue()[: self.truncate], resp.status)
            del resp.headers["Content-Length"]
            resp.headers["Content-Length"] = full
        return resp


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.delenv("SELCONV_OFFLINE", raising=False)


def test_download_full_and_checksum(tmp_path, monkeypatch):
    srv = FakeServer({"http://x/a.bin": PAYLOAD})
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    out = tr.download_file("http://x/a.bin", tmp_path / "a.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                           progress=False, chunk=1000)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "a.bin.part").exists()
    # present file: no request at all
    tr.download_file("http://x/a.bin", tmp_path / "a.bin", progress=False)
    assert len(srv.requests) == 1


def test_download_resumes_from_part(tmp_path, monkeypatch):
    srv = FakeServer({"http://x/a.bin": PAYLOAD})
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:4000])
    tr.download_file("http://x/a.bin", tmp_path / "a.bin", progress=True)
    assert srv.requests[0].get_header("Range") == "bytes=4000-"
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_download_restarts_when_server_ignores_range(tmp_path, monkeypatch):
    srv = FakeServer({"http://x/a.bin": PAYLOAD}, honour_range=False)
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    (tmp_path / "a.bin.part").write_bytes(b"garbage")
    tr.download_file("http://x/a.bin", tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_truncated_transfer_then_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(tr.urllib.request, "urlopen", FakeServer({"http://x/a": PAYLOAD}, truncate=3000))
    with pytest.raises(tr.DownloadError, match="incomplete.*resume"):
        tr.download_file("http://x/a", tmp_path / "a", progress=False)
    assert (tmp_path / "a.part").stat().st_size == 3000
    monkeypatch.setattr(tr.urllib.request, "urlopen", FakeServer({"http://x/a": PAYLOAD}))
    tr.download_file("http://x/a", tmp_path / "a", progress=False)
    assert (tmp_path / "a").read_bytes() == PAYLOAD


def test_checksum_mismatch(tmp_path, monkeypatch):
    monkeypatch.setattr(tr.urllib.request, "urlopen", FakeServer({"http://x/a": PAYLOAD}))
    with pytest.raises(tr.ChecksumError, match="expected 0000"):
        tr.download_file("http://x/a", tmp_path / "a", sha256="0000", progress=False)
    assert not (tmp_path / "a").exists() and (tmp_path / "a.corrupt").exists()


def test_http_error(tmp_path, monkeypatch):
    def notfound(req, timeout=None):
        raise urllib.error.HTTPError(req.full_url, 404, "Not Found", None, None)
    monkeypatch.setattr(tr.urllib.request, "urlopen", notfound)
    with pytest.raises(tr.DownloadError, match="HTTP 404"):
        tr.download_file("http://x/a", tmp_path / "a", progress=False)


def test_offline_fails_at_once_with_instructions(tmp_path, monkeypatch):
    def offline(req, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(tr.urllib.request, "urlopen", offline)
    t0 = time.perf_counter()
    with pytest.raises(tr.OfflineError) as e:
        dl.download_dataset("holidays", root=tmp_path, progress=False)
    assert time.perf_counter() - t0 < 2
    msg = str(e.value)
    assert "offline" in msg and str(tmp_path / "_archives" / "holidays_jpg1.tar.gz") in msg
    assert "jpg1.tar.gz" in msg and "oxc1_100k.part01.rar" in msg
    assert not list(tmp_path.rglob("*.part"))


def test_offline_env_skips_the_attempt(tmp_path, monkeypatch):
    def boom(req, timeout=None):
        raise AssertionError("network used")
    monkeypatch.setattr(tr.urllib.request, "urlopen", boom)
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    with pytest.raises(tr.OfflineError, match="SELCONV_OFFLINE"):
        tr.download_file("http://x/a", tmp_path / "a", progress=False)


def _tgz(path, files):
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _jpeg_bytes():
    b = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(b, "JPEG")
    return b.getvalue()


def test_hand_placed_archives_unpack_offline_and_load(tmp_path, monkeypatch):
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    arch = tmp_path / "_archives"
    arch.mkdir()
    j = _jpeg_bytes()
    _tgz(arch / "holidays_jpg1.tar.gz", {"jpg/100000.jpg": j, "jpg/100001.jpg": j})
    _tgz(arch / "holidays_jpg2.tar.gz", {"jpg/100100.jpg": j, "jpg/100101.jpg": j})
    # Flickr100k placed unpacked by hand (its RAR parts are not needed then)
    (tmp_path / "flickr100k").mkdir()
    for i in range(3):
        (tmp_path / "flickr100k" / f"f{i}.jpg").write_bytes(j)
    (tmp_path / "flickr100k" / ".unpacked_oxc1_100k.part01.rar").write_text("ok\n")
    monkeypatch.setitem(dl.RESOURCES, "holidays", dl._HOLIDAYS)
    dl.download_dataset("holidays", root=tmp_path, progress=False)
    d = ds.load_dataset("holidays", root=tmp_path, n_train=2)
    assert len(d.images) == 4 and len(d.queries) == 2 and len(d.train_images) == 2
    assert (arch / "holidays_jpg1.tar.gz.sha256").read_text().split()[0] == file_digest(
        arch / "holidays_jpg1.tar.gz")


def test_unpack_zip_rejects_escape_and_rar_without_tool(tmp_path, monkeypatch):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("full/ukbench00000.jpg", b"x")
    tr.unpack_archive(z, tmp_path / "u")
    assert (tmp_path / "u" / "full" / "ukbench00000.jpg").exists()
    bad = tmp_path / "bad.tgz"
    _tgz(bad, {"../evil.txt": b"x"})
    with pytest.raises(tr.DownloadError, match="outside"):
        tr.unpack_archive(bad, tmp_path / "v")
    monkeypatch.setattr(tr.shutil, "which", lambda name: None)
    (tmp_path / "x.part01.rar").write_bytes(b"Rar!")
    with pytest.raises(tr.DownloadError, match="unrar"):
        tr.unpack_archive(tmp_path / "x.part01.rar", tmp_path / "w")
    (tmp_path / "broken.tgz").write_bytes(b"not a tar")
    with pytest.raises(tr.DownloadError, match="cannot unpack"):
        tr.unpack_archive(tmp_path / "broken.tgz", tmp_path / "w")


def test_manual_instructions_and_recipes(tmp_path):
    txt = dl.manual_instructions("R-Oxford5k", root=tmp_path)
    assert "gnd_roxford5k.pkl" in txt and "oxbuild_images-v1.tgz" in txt and "paris_1-v1.tgz" in txt
    assert set(ds.list_datasets()) - {"default"} <= set(dl.RESOURCES)
    with pytest.raises(KeyError):
        dl.manual_instructions("nope")


# ------------------------------------------------------------------ distractor sets (R1M, Flickr100k)
def _r1m_fixture(monkeypatch, n_parts=2):
    """A 2-archive R1M in the official format: jpg/revisitop1m.N.tar.gz holding images under
    folders relative to jpg/, and revisitop1m.txt listing them (one without its extension)."""
    j = _jpeg_bytes()
    files, listing = {}, []
    for i in range(1, n_parts + 1):
        buf = io.BytesIO()
        members = {f"{i:02d}/img{i}_{k}.jpg": j for k in range(3)}
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        files[f"{dl.R1M}/jpg/revisitop1m.{i}.tar.gz"] = buf.getvalue()
        listing += list(members)
    listing[0] = listing[0][:-4]                      # an entry without extension, as the list may hold
    files[f"{dl.R1M}/revisitop1m.txt"] = ("\n".join(listing) + "\n").encode()
    for key in ("revisitop1m", "r1m"):
        monkeypatch.setitem(dl.RESOURCES, key, dl._r1m_resources(n_parts))
    return files, listing


def test_r1m_resources_follow_the_official_names():
    res = dl.RESOURCES[ds.dataset_key("R1M", dl.RESOURCES)]   # the one name rule: r1m -> revisitop1m
    assert [r.filename for r in res[:2]] == ["revisitop1m.1.tar.gz", "revisitop1m.2.tar.gz"]
    assert res[99].filename == "revisitop1m.100.tar.gz" and len(res) == 101
    assert res[0].url == "http://ptak.felk.cvut.cz/revisitop/revisitop1m/jpg/revisitop1m.1.tar.gz"
    assert res[-1].url.endswith("/revisitop1m/revisitop1m.txt") and not res[-1].unpack
    assert all(r.dest == "revisitop1m/jpg" and not r.keep for r in res[:100])
    assert dl.RESOURCES["revisitop1m"] == res


def test_r1m_download_unpacks_deletes_archives_and_lists_paths(tmp_path, monkeypatch):
    files, listing = _r1m_fixture(monkeypatch)
    srv = FakeServer(files)
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    dl.download_dataset("R1M", root=tmp_path, progress=False)
    paths = dl.distractor_paths("r1m", root=tmp_path)
    assert len(paths) == 6 and all(Path(p).is_file() for p in paths)
    assert paths[0] == str(tmp_path / "revisitop1m" / "jpg" / "01" / "img1_0.jpg")   # ".jpg" appended
    assert [Path(p).relative_to(tmp_path / "revisitop1m" / "jpg").as_posix() for p in paths[1:]] == listing[1:]
    arch = tmp_path / "_archives"
    assert not (arch / "revisitop1m.1.tar.gz").exists()                 # unpacked, then deleted
    assert (arch / "revisitop1m.1.tar.gz.sha256").is_file()             # its digest kept
    n = len(srv.requests)
    dl.download_dataset("revisitop1m", root=tmp_path, progress=False)   # all there: no request
    assert len(srv.requests) == n


def test_r1m_offline_and_incomplete(tmp_path, monkeypatch):
    files, _ = _r1m_fixture(monkeypatch)

    def offline(req, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(tr.urllib.request, "urlopen", offline)
    with pytest.raises(tr.OfflineError) as e:
        dl.download_dataset("r1m", root=tmp_path, progress=False)
    msg = str(e.value)
    assert "offline" in msg and "revisitop1m.1.tar.gz" in msg and "revisitop1m.txt" in msg
    assert str(tmp_path / "_archives" / "revisitop1m.2.tar.gz") in msg
    with pytest.raises(FileNotFoundError, match=r"R1M image list .*revisitop1m.txt is missing.*download_dataset\('revisitop1m'"):
        dl.distractor_paths("r1m", root=tmp_path)
    # the list is there but an archive was not unpacked: the missing images are named
    (tmp_path / "revisitop1m").mkdir()
    (tmp_path / "revisitop1m" / "revisitop1m.txt").write_text("01/a.jpg\n02/b\n")
    with pytest.raises(FileNotFoundError, match=r"2 of the 2 images .* missing .*01/a.jpg"):
        dl.distractor_paths("r1m", root=tmp_path)
    with pytest.raises(KeyError, match="unknown distractor set 'r2m'"):
        dl.distractor_paths("r2m", root=tmp_path)


def test_flickr100k_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)no Flickr100k image under .*_archives/oxc1_100k.part02.rar"):
        dl.distractor_paths("flickr100k", root=tmp_path)
    d = tmp_path / "flickr100k" / "oxc1_100k" / "a"
    d.mkdir(parents=True)
    for n in ("b.jpg", "a.JPG", "notes.txt"):
        (d / n).write_bytes(_jpeg_bytes())
    assert [Path(p).name for p in dl.distractor_paths("Flickr", root=tmp_path)] == ["a.JPG", "b.jpg"]


def test_remote_sizes_from_headers_and_offline(tmp_path, monkeypatch):
    files, _ = _r1m_fixture(monkeypatch)
    srv = FakeServer(files)
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    sizes = dl.remote_sizes("r1m")
    assert sizes == {Path(u).name: len(b) for u, b in files.items()}
    assert all(r.get_method() == "HEAD" for r in srv.requests)
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    with pytest.raises(tr.OfflineError, match="SELCONV_OFFLINE"):
        dl.remote_sizes("r1m")


def test_flickr100k_parts_land_next_to_part01(tmp_path, monkeypatch):
    # unrar reads part02 ... part40 from part01's folder: every part goes to _archives
    parts = dl._flickr_parts()[:3]
    assert len(dl._flickr_parts()) == 40 and all(r.unpack for r in dl._flickr_parts())
    monkeypatch.setitem(dl.RESOURCES, "flickr100k", parts)
    srv = FakeServer({r.url: b"Rar!" + bytes([i]) * 64 for i, r in enumerate(parts)})
    monkeypatch.setattr(tr.urllib.request, "urlopen", srv)
    seen = []

    def fake_unpack(archive, dest):
        seen.append((Path(archive).name, sorted(p.name for p in Path(archive).parent.glob("*.rar"))))
        Path(dest).mkdir(parents=True, exist_ok=True)
        return Path(dest)
    monkeypatch.setattr(dl, "unpack_archive", fake_unpack)
    dl.download_dataset("flickr100k", root=tmp_path, progress=False)
    assert seen == [("oxc1_100k.part01.rar",
                     ["oxc1_100k.part01.rar", "oxc1_100k.part02.rar", "oxc1_100k.part03.rar"])]
    n = len(srv.requests)
    dl.download_dataset("flickr100k", root=tmp_path, progress=False)   # unpacked: nothing fetched
    assert len(srv.requests) == n == 3 and len(seen) == 1
