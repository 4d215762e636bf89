"""fetch (resume, checksums, unpacking, the offline message) and verify, against a local HTTP server only."""
import hashlib
import http.server
import threading
import time
import zipfile

import pytest
from data_fixtures import PtbxlRow, manifest, write_ptbxl

import ecgbench.data.registry as manifest_module
from ecgbench.cli import main
from ecgbench.data.fetch import FetchError, download, fetch, verify_copy
from ecgbench.data.manifest import Download
from ecgbench.data.registry import get_manifest

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")
PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


class _Server(http.server.ThreadingHTTPServer):
    payload = PAYLOAD
    honour_range = True
    ranges: list


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body, start = self.server.payload, 0
        asked = self.headers.get("Range")
        self.server.ranges.append(asked)
        if asked and self.server.honour_range:
            start = int(asked.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.ranges = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server, name="file.zip"):
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def test_download_resumes_a_partial_file_with_a_range_request(tmp_path, server):
    dest = tmp_path / "file.zip"
    (tmp_path / "file.zip.part").write_bytes(PAYLOAD[:300_000])
    download(_url(server), dest, hashlib.sha256(PAYLOAD).hexdigest(), timeout=5, progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "file.zip.part").exists()
    assert server.ranges == ["bytes=300000-"]


def test_download_starts_again_when_the_server_ignores_range(tmp_path, server):
    server.honour_range = False
    (tmp_path / "file.zip.part").write_bytes(b"stale bytes")
    download(_url(server), tmp_path / "file.zip", "unknown", timeout=5, progress=False)
    assert (tmp_path / "file.zip").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_deletes_the_download(tmp_path, server):
    with pytest.raises(FetchError, match="sha256 .* the manifest expects 0000"):
        download(_url(server), tmp_path / "file.zip", "0" * 64, timeout=5, progress=False)
    assert not (tmp_path / "file.zip").exists() and not (tmp_path / "file.zip.part").exists()


def test_fetch_downloads_unpacks_and_verifies(tmp_path, server):
    source = write_ptbxl(tmp_path / "release", [PtbxlRow(1, 7, {"NORM": 100.0}, 1)])
    archive = tmp_path / "ptbxl.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in source.rglob("*"):
            z.write(path, f"ptb-xl-1.0.3/{path.relative_to(source)}")
    server.payload = archive.read_bytes()
    m = manifest("ptbxl", source={"downloads": (Download(_url(server, "ptbxl.zip"),
                                                         hashlib.sha256(server.payload).hexdigest()),)})
    result = fetch(m, tmp_path / "data" / "ptbxl", timeout=5, progress=False)
    assert (tmp_path / "data" / "ptbxl" / "records500" / "00000" / "00001_hr.dat").is_file()
    assert result.records_found == 1 and not result.missing


def test_fetch_without_network_fails_fast_naming_source_and_layout(tmp_path, monkeypatch, capsys):
    offline = manifest("ptbxl", source={"downloads": (Download("http://127.0.0.1:9/ptbxl.zip", "unknown"),)})
    started = time.perf_counter()
    with pytest.raises(FetchError) as info:
        fetch(offline, tmp_path / "ptbxl", timeout=3, progress=False)
    assert time.perf_counter() - started < 10
    message = str(info.value)
    assert "http://127.0.0.1:9/ptbxl.zip" in message and "https://physionet.org/content/ptb-xl/1.0.3/" in message
    assert "ptbxl/scp_statements.csv" in message and "ecgbench data verify ptbxl" in message
    monkeypatch.setattr(manifest_module, "get_manifest", lambda name: offline)
    assert main(["data", "fetch", "ptbxl", "--root", str(tmp_path), "--timeout", "3"]) == 2
    assert "cannot download ptbxl from http://127.0.0.1:9/ptbxl.zip" in capsys.readouterr().err


def test_verify_reports_missing_differing_and_unchecked_files(tmp_path):
    folder = write_ptbxl(tmp_path, [PtbxlRow(1, 7, {"NORM": 100.0}, 1), PtbxlRow(2, 8, {"NORM": 100.0}, 2)])
    (folder / "records500" / "00000" / "00002_hr.dat").unlink()
    result = verify_copy(get_manifest("ptbxl"), folder)
    assert not result.ok
    assert result.missing == [str(folder / "records500/00000/00002_hr.dat")]
    assert result.differs[0].startswith(f"{folder / 'scp_statements.csv'} (sha256 ")
    assert result.not_checked == [str(folder / "ptbxl_database.csv")]
    assert "holds 2 records, the manifest expects 21799: a partial copy" in result.report()
    assert not verify_copy(get_manifest("ptbxl"), tmp_path / "absent").ok


def test_a_download_that_is_no_archive_is_put_into_the_dataset_folder(tmp_path, server):
    m = manifest("code_test", source={"downloads": (Download(_url(server, "ecg_tracings.hdf5"), "unknown"),)})
    fetch(m, tmp_path / "code_test", timeout=5, progress=False)
    assert (tmp_path / "code_test" / "ecg_tracings.hdf5").read_bytes() == PAYLOAD
