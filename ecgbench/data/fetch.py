"""Getting a complete copy on disk and checking it: download with resume and checksums, and ``verify``.

Downloads resume from a ``.part`` file with an HTTP Range request and become the final file only after the
checksum matches (where the manifest knows it). Without network the user gets the source, the folder layout
and the next command instead of a traceback.
"""
from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from ecgbench.data.loaders.base import Index
from ecgbench.data.manifest import UNKNOWN_SHA256, DataError, Manifest
from ecgbench.digests import file_sha256

CHUNK = 1 << 20
DOWNLOADS = ".downloads"  # hidden: neither a record nor part of the copy's identity


class FetchError(DataError):
    pass


# ----------------------------------------------------------------------------------------------------------
# verify
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Verification:
    """How a copy on disk compares with its manifest. ``not_checked`` files exist but have no known checksum."""

    folder: Path
    missing: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    records_found: int | None = None
    records_expected: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.differs and self.records_found == self.records_expected

    def problems(self) -> list[str]:
        lines = [f"missing: {p}" for p in self.missing] + [f"differs: {p}" for p in self.differs]
        if self.records_found is not None and self.records_found != self.records_expected:
            lines.append(f"holds {self.records_found} records, the manifest expects {self.records_expected}"
                         + (": a partial copy" if self.records_found < self.records_expected else ""))
        return lines

    def report(self) -> str:
        lines = [f"{self.folder}: " + ("complete" if self.ok else "does NOT match the manifest")]
        lines += [f"  {line}" for line in self.problems()]
        lines += [f"  not checked (no known sha256 in the manifest): {p}" for p in self.not_checked]
        return "\n".join(lines)


def verify_copy(manifest: Manifest, folder: Path, index: Index | None = None, max_listed: int = 20
                ) -> Verification:
    """Identifying files and their checksums, the records the index lists and their files, the record count.

    ``index``: the loader's index when the caller has built it already (prepare does)."""
    from ecgbench.data.loaders import loader_class

    folder = Path(folder)
    result = Verification(folder, records_expected=manifest.record_count)
    for item in manifest.files:
        path = folder / item.path
        if not path.is_file():
            result.missing.append(str(path))
        elif item.sha256 == UNKNOWN_SHA256:
            result.not_checked.append(str(path))
        elif (actual := file_sha256(path)) != item.sha256:
            result.differs.append(f"{path} (sha256 {actual[:16]}..., manifest {item.sha256[:16]}...)")
    if not folder.is_dir():
        return result
    loader = loader_class(manifest.format.kind)(folder, manifest)
    try:
        with loader:
            index = index or loader.index()
    except DataError as e:
        result.differs.append(f"cannot list the records: {e}")
        return result
    absent = [str(folder / f) for entry in index.entries for f in loader.record_files(entry)
              if not (folder / f).is_file()]
    result.missing += absent[:max_listed] + ([f"... and {len(absent) - max_listed} more"]
                                             if len(absent) > max_listed else [])
    result.differs += [str(problem) for problem in index.problems]
    result.records_found = len(index.entries) + len(index.problems)
    return result


# ----------------------------------------------------------------------------------------------------------
# fetch
# ----------------------------------------------------------------------------------------------------------
def _offline_help(manifest: Manifest, url: str, folder: Path, reason: object) -> str:
    return (f"cannot download {manifest.name} from {url} ({reason}).\n"
            f"Get {manifest.title} {manifest.version} from its official source {manifest.source.homepage} "
            f"and place the files so that {folder.parent} holds:\n{manifest.source.layout.rstrip()}\n"
            f"Then check the copy with: ecgbench data verify {manifest.name} --root {folder.parent}")


def download(url: str, dest: Path, sha256: str, *, timeout: float, progress: bool | None = None) -> Path:
    """``url`` -> ``dest``, resuming a previous ``.part``; ``FetchError`` for a bad or short download (network
    errors propagate as urllib / OS errors)."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ecgbench", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:  # 416: nothing left to send, the .part is whole
            raise
    else:
        with response:
            if have and response.status != 206:  # the server ignored Range: start again
                have = 0
            total = have + int(response.headers.get("Content-Length") or 0)
            with open(part, "ab" if have else "wb") as out, tqdm(
                    total=total or None, initial=have, unit="B", unit_scale=True, desc=dest.name,
                    disable=None if progress is None else not progress) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        if total and part.stat().st_size != total:
            raise FetchError(f"{url}: the connection ended after {part.stat().st_size} of {total} bytes; run fetch "
                             "again to resume")
    if sha256 != UNKNOWN_SHA256 and (actual := file_sha256(part)) != sha256:
        part.unlink()
        raise FetchError(f"{url}: downloaded file has sha256 {actual}, the manifest expects {sha256}; deleted "
                         f"it, run fetch again")
    os.replace(part, dest)
    return dest


def unpack(archive: Path, folder: Path) -> None:
    """Extract a zip or tar archive into ``folder``, dropping a single top-level folder if it has one; a file
    that is no archive is put into ``folder`` as it is."""
    staging = folder / f".unpack-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(staging)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(staging, filter="data")
    else:  # a plain file: linked into place, the download stays so that a later fetch finds it
        target = folder / archive.name
        target.unlink(missing_ok=True)
        try:
            os.link(archive, target)
        except OSError:
            shutil.copy2(archive, target)
        return
    top = list(staging.iterdir())
    source = top[0] if len(top) == 1 and top[0].is_dir() else staging
    for item in source.iterdir():
        target = folder / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(staging)


def fetch(manifest: Manifest, folder: Path, *, timeout: float = 15.0, progress: bool | None = None) -> Verification:
    """Download and unpack the official release into ``folder`` unless a verified copy is there already."""
    folder = Path(folder)
    before = verify_copy(manifest, folder)
    if before.ok:
        return before
    for item in manifest.source.downloads:
        name = PurePosixPath(urlparse(item.url).path).name
        dest = folder / DOWNLOADS / name
        if not dest.exists():
            try:
                download(item.url, dest, item.sha256, timeout=timeout, progress=progress)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                raise FetchError(_offline_help(manifest, item.url, folder, getattr(e, "reason", e))) from e
        unpack(dest, folder)
    return verify_copy(manifest, folder)
