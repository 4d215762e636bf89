"""Saved runs: numbered files per machine, exact round trips, lookup by number/name/path, strict loading."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_factory import make_record

from ecgbench.codeid import code_digest
from ecgbench.results.runs import (
    RunError,
    as_run,
    find_run,
    list_runs,
    load_run_file,
    machine_id,
    resolve_run,
    runs_table,
    save_run,
)
from ecgbench.results.schema import sealed
from ecgbench.results.store import write_record


@pytest.fixture
def records() -> list[dict]:
    return [make_record("ptb", "resnet1d18", 1.0, "scratch", n_test=30),
            make_record("ptb", "resnet1d18", 1.0, "finetune", n_test=30),
            make_record("ptb", "lstm", 1.0, "scratch", status="failed")]


def _folder(tmp_path: Path, records: list[dict]) -> Path:
    folder = tmp_path / "results"
    for record in records:
        write_record(folder, record["key"].replace("->", "_to_"), record)
    return folder


def test_saves_number_upwards_per_machine_and_round_trip_exactly(tmp_path, records):
    root = tmp_path / "runs"
    first = save_run(records, "baseline", root, machine="m1")
    second = save_run(records[:2], "baseline", root, machine="m1")
    other = save_run(records, "baseline", root, machine="m2")
    assert first.path == root / "m1" / "0001_baseline.json"
    assert second.path == root / "m1" / "0002_baseline.json"
    assert other.path == root / "m2" / "0001_baseline.json"
    loaded = load_run_file(first.path)
    assert loaded.records == sorted(records, key=lambda r: r["key"])
    assert (loaded.name, loaded.number, loaded.machine, loaded.label) == ("baseline", 1, "m1", "0001_baseline")
    assert loaded.saved_by["code_digest"] == code_digest()
    assert [(r.machine, r.number, r.name) for r in list_runs(root)] == [("m1", 1, "baseline"), ("m1", 2, "baseline"),
                                                                         ("m2", 1, "baseline")]


def test_a_results_folder_is_frozen_with_its_source(tmp_path, records):
    folder = _folder(tmp_path, records)
    saved = save_run(folder, "from-folder", tmp_path / "runs")
    assert saved.machine == machine_id()
    loaded = load_run_file(saved.path)
    assert loaded.source == str(folder)
    assert loaded.records == as_run(folder).records == [sealed(r) for r in sorted(records, key=lambda r: r["key"])]


def test_undefined_numbers_are_stored_as_null(tmp_path, records):
    records[0]["test"]["auroc_macro"] = float("nan")
    saved = save_run(records, "nan", tmp_path / "runs", machine="m")
    stored = json.loads(saved.path.read_text())["records"]
    assert [r for r in stored if r["key"] == records[0]["key"]][0]["test"]["auroc_macro"] is None


def test_lookup_by_number_name_stem_path_and_folder(tmp_path, records):
    root = tmp_path / "runs"
    save_run(records, "baseline", root, machine="m")
    newest = save_run(records[:1], "baseline", root, machine="m")
    save_run(records, "wider", root, machine="m")
    assert find_run("1", root).name == "0001_baseline.json"
    assert find_run("0003", root).name == "0003_wider.json"
    assert find_run("baseline", root) == newest.path  # a name means its newest run
    assert find_run("0001_baseline", root).name == "0001_baseline.json"
    assert resolve_run(str(newest.path), root).records == newest.records
    folder = _folder(tmp_path, records)
    assert resolve_run(folder, root).label == str(folder)


def test_unknown_and_ambiguous_names_are_clear_errors(tmp_path, records):
    root = tmp_path / "runs"
    save_run(records, "baseline", root, machine="m1")
    save_run(records, "baseline", root, machine="m2")
    with pytest.raises(RunError, match=r"ambiguous.*m1/0001_baseline.json.*m2/0001_baseline.json"):
        find_run("baseline", root)
    with pytest.raises(RunError, match=r"no saved run 'nope' under .*saved runs: m1/0001_baseline, m2/0001_baseline"):
        find_run("nope", root)


@pytest.mark.parametrize("name", ["", "a/b", "../up", "-dash", "x" * 65, "2024", "with space"])
def test_bad_run_names_are_refused(tmp_path, records, name):
    with pytest.raises(RunError, match="run name"):
        save_run(records, name, tmp_path / "runs", machine="m")


def test_duplicate_cells_and_empty_sources_are_refused(tmp_path, records):
    with pytest.raises(RunError, match=r"more than once: ptb-resnet1d18-f1.0-scratch-s0"):
        save_run([records[0], records[0]], "dup", tmp_path / "runs", machine="m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no result records"):
        save_run(tmp_path / "empty", "empty", tmp_path / "runs", machine="m")
    with pytest.raises(RunError, match="missing: no such results folder or saved run file"):
        as_run(tmp_path / "missing")


def test_a_corrupt_record_in_a_folder_is_named(tmp_path, records):
    folder = _folder(tmp_path, records)
    (folder / "broken.json").write_text("{")
    with pytest.raises(RunError, match=r"broken.json: unreadable result record"):
        as_run(folder)


def _saved(tmp_path: Path, records: list[dict]) -> tuple[Path, dict]:
    saved = save_run(records, "base", tmp_path / "runs", machine="m")
    return saved.path, json.loads(saved.path.read_text())


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(run_schema_version=2), "run_schema_version 2, expected 1"),
    (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda d: d.pop("machine"), r"missing keys \['machine'\]"),
    (lambda d: d.update(number="1"), "number must be a int"),
    (lambda d: d.update(number=True), "number must be a int"),
    (lambda d: d["records"][1].pop("cell_id"), r"records\[1\]: unknown keys \[\], missing keys \['cell_id'\]"),
])
def test_a_bad_saved_run_names_the_file_and_the_problem(tmp_path, records, change, message):
    path, document = _saved(tmp_path, records)
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(RunError, match=message) as error:
        load_run_file(path)
    assert str(path) in str(error.value)


def test_not_json_is_named(tmp_path):
    path = tmp_path / "0001_x.json"
    path.write_text("not json")
    with pytest.raises(RunError, match=f"{path}: unreadable saved run"):
        load_run_file(path)


def test_listing_skips_temp_files_and_prints_a_table(tmp_path, records):
    root = tmp_path / "runs"
    save_run(records, "baseline", root, machine="m")
    (root / "m" / ".0002_x.json.abc.tmp").write_text("{")
    (root / "m" / "notes.json").write_text("{}")
    runs = list_runs(root)
    assert [r.path.name for r in runs] == ["0001_baseline.json"]
    table = runs_table(runs)
    assert "0001" in table and "baseline" in table and "machine" in table
    assert runs_table([]) == "no saved runs"
