"""Which code made a result: a digest of the source files that can change one, the git commit, a dirty flag.

A cell's identity holds the digest, so a change to the engine, a model or data preparation re-runs the cells
it affects instead of reusing numbers made by other code; a change to reports, the CLI or the plugin does not.
The files are read through ``importlib.resources``, so an installed wheel digests the same code as a checkout.
What is digested is the code as Python parses it, without docstrings and comments (``ast.unparse`` of the
module with its docstrings removed): fixing a comment must not make every stored record stale.
Base layer: standard library only.
"""
from __future__ import annotations

import ast
import fnmatch
import hashlib
import subprocess
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Iterable, Iterator

PACKAGE = "ecgbench"
# Package-relative ``fnmatch`` patterns ("*" also crosses "/") of the source that can change a cell's result.
# Edit this list when a module moves: a pattern matching no file is an error, never a silently smaller digest.
RESULT_SOURCES: tuple[str, ...] = (
    "engine/*.py",     # fit, evaluate, checkpoints, device and seeding
    "models/*.py",     # architectures and the registry
    "data/*.py",       # loaders, manifests, labels, preparation, preprocessing, synthetic data, splits
    "study.py",        # seeds (stable_seed), subset sizes
    "profiles.py",     # train configs as parsed from a profile
    "runner.py",       # the module that runs one cell
    "metrics.py",      # the test metrics a record stores
    "transfer/*.py",   # transferability scores
    "inputs.py",       # a model's input spec: what its data are prepared at
    "checkpoints/weights.py",  # how a given checkpoint's weights are read into its model
)
# Matched above but cannot change a result: the CLIs of ``ecgbench data`` and ``ecgbench overlap``, and the
# checksum-verified download.
RESULT_SOURCES_EXCLUDED: tuple[str, ...] = ("data/commands.py", "data/fetch.py", "data/overlap_command.py")
# Where a record keeps the digest of the code that made it (in ``identity``).
IDENTITY_KEY = "code_digest"
UNKNOWN = "unknown"


class CodeIdentityError(RuntimeError):
    """The list of result-affecting sources no longer matches the package's files."""


@dataclass(frozen=True)
class CodeIdentity:
    """The digest of the result-affecting source, the commit ("unknown" outside a checkout), dirty (None then)."""

    digest: str
    commit: str
    dirty: bool | None

    def as_dict(self) -> dict:
        return {IDENTITY_KEY: self.digest, "commit": self.commit, "dirty": self.dirty}


def _files(root: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """Every file under ``root`` as (package-relative posix path, handle); bytecode caches skipped."""
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _files(entry, f"{relative}/")
        elif entry.is_file():
            yield relative, entry


def result_sources(root: Traversable | Path | None = None, patterns: Iterable[str] = RESULT_SOURCES,
                   excluded: Iterable[str] = RESULT_SOURCES_EXCLUDED) -> dict[str, Traversable]:
    """The result-affecting files of the package at ``root`` (default: the installed ``ecgbench``), by path."""
    root = resources.files(PACKAGE) if root is None else root
    patterns, excluded = tuple(patterns), tuple(excluded)
    files = dict(_files(root))
    chosen, unmatched = {}, []
    for pattern in patterns:
        matched = {p: f for p, f in files.items() if fnmatch.fnmatchcase(p, pattern)}
        if not matched:
            unmatched.append(pattern)
        chosen.update(matched)
    if unmatched:
        raise CodeIdentityError(f"ecgbench.codeid.RESULT_SOURCES: {unmatched} match no file under {root}; "
                                "update the list to the package's current layout")
    return {p: f for p, f in sorted(chosen.items()) if not any(fnmatch.fnmatchcase(p, x) for x in excluded)}


def code_digest(root: Traversable | Path | None = None, patterns: Iterable[str] = RESULT_SOURCES,
                excluded: Iterable[str] = RESULT_SOURCES_EXCLUDED) -> str:
    """A 20-hex digest of the paths and code of the result-affecting files (see ``result_sources``)."""
    h = hashlib.sha256()
    for path, handle in result_sources(root, patterns, excluded).items():
        h.update(path.encode() + b"\0" + hashlib.sha256(_code(path, handle.read_bytes())).digest())
    return h.hexdigest()[:20]


def _code(path: str, source: bytes) -> bytes:
    """What of a file can change a result: a Python module's code without docstrings and comments (unparsed
    from its syntax tree, so layout does not count either); any other file's bytes."""
    if not path.endswith(".py"):
        return source
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree).encode()


def _git(directory: Path, *args: str) -> str | None:
    """stdout of ``git args`` run in ``directory``; None when git is missing or fails."""
    try:
        out = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _package_dir() -> Path:
    return Path(__file__).parent


@lru_cache(maxsize=None)
def git_commit(directory: Path | None = None) -> str:
    """The commit of the checkout holding the package at ``directory``, or "unknown".

    "unknown" also when the package is not tracked there: an installed copy inside another repository's
    ignored folder (a virtualenv in a checkout) must not claim that checkout's commit.
    """
    directory = directory or _package_dir()
    if not _git(directory, "ls-files", "--", "__init__.py"):
        return UNKNOWN
    return _git(directory, "rev-parse", "--short=12", "HEAD") or UNKNOWN


@lru_cache(maxsize=None)
def git_dirty(directory: Path | None = None) -> bool | None:
    """Whether the package's tracked files differ from the commit; None outside a checkout. Only the package
    counts: regenerated reports, edited tests or docs beside it do not change the code that made a result."""
    directory = directory or _package_dir()
    if git_commit(directory) == UNKNOWN:
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return None if status is None else bool(status)


@lru_cache(maxsize=1)
def code_identity() -> CodeIdentity:
    """This process's code identity, computed once (the files cannot change a loaded module anyway)."""
    return CodeIdentity(code_digest(), git_commit(), git_dirty())


def record_code_digest(record: dict) -> str | None:
    """The code digest a record was made with; None for records made before code digests existed."""
    identity = record.get("identity")
    return identity.get(IDENTITY_KEY) if isinstance(identity, dict) else None


def code_digest_counts(records: Iterable[dict]) -> dict[str, int]:
    """How many records each code digest made ("unknown" for records without one), most first."""
    counts = Counter(record_code_digest(r) or UNKNOWN for r in records)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def leaderboard_records(records: list[dict], keep_stale: bool, include_option: str,
                        digest: str | None = None) -> tuple[list[dict], str | None]:
    """The records a leaderboard may show, and a note when stale ones were left out.

    A record made by other result-affecting code (another digest, or none) is stale: left out unless
    ``keep_stale``; the note says how many and names ``include_option``, the option that includes them.
    """
    digest = digest or code_identity().digest
    if keep_stale:
        return list(records), None
    current = [r for r in records if record_code_digest(r) == digest]
    stale = [r for r in records if record_code_digest(r) != digest]
    if not stale:
        return current, None
    digests = ", ".join(f"{d} ({n})" for d, n in code_digest_counts(stale).items())
    return current, (f"excluded {len(stale)} stale record(s) made by other result-affecting code than this one "
                     f"({digest}): code digests {digests}; re-run those cells, or include them with "
                     f"{include_option}")
