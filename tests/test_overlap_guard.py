"""The overlap guard through the runner (issue 22): a downstream whose test records are copies (another gain
and offset) of recordings its upstream was trained on fails at once by default, drops them, or reports them as
the profile says; checkpoints carry what they were trained on, wherever they are moved."""
import dataclasses
import re
import shutil

import numpy as np
import pytest
from tiny_model import NAME as TINY
from tiny_model import new_checkpoint, tiny_weights

from ecgbench.checkpoints import register_checkpoint_file
from ecgbench.data.duplicates import dataset_fingerprints
from ecgbench.data.fingerprint import FingerprintError, save_fingerprints
from ecgbench.data.overlap import training_fingerprints
from ecgbench.inputs import DEFAULT_INPUT
from ecgbench.results.compare import differing_test_set
from ecgbench.results.overlap_section import overlap_section
from ecgbench.runner import checkpoint_file
from ecgbench.study import Cell, ProfileError, Transferability, load_profiles
from ecgbench.trained_on import trained_on

CELL = Cell("ptb", "resnet1d18", 1.0, "linear", 0, upstream="cpsc2018")
N_COPIES = 3


def _leaky(study) -> tuple[list[str], list[str]]:
    """Downstream ptb with its first test records replaced by upstream cpsc2018 training recordings, re-scaled."""
    up, down = study.dataset("cpsc2018"), study.dataset("ptb")
    train, test = up.indices("train")[:N_COPIES], down.indices("test")[:N_COPIES]
    signals = np.array(down.signals)
    signals[test] = 1.7 * np.asarray(up.signals[train]) + 0.2
    study._datasets["ptb", DEFAULT_INPUT] = dataclasses.replace(down, signals=signals, fingerprints=None)
    return up.record_ids[train].tolist(), down.record_ids[test].tolist()


@pytest.fixture
def guarded(make_runner, smoke_profile):
    def make(mode: str):
        study = make_runner(results=f"results-{mode}", profile=dataclasses.replace(smoke_profile, overlap=mode))
        return study, _leaky(study)
    return make


def test_by_default_a_cell_whose_upstream_saw_its_test_records_fails_at_once_naming_both_sides(guarded):
    study, (up_ids, down_ids) = guarded("fail")
    record = study.run(CELL)
    assert record["status"] == "failed"
    first_line = record["error"].splitlines()[0]
    assert first_line.startswith("OverlapError: upstream cpsc2018 was trained on recordings of downstream ptb's "
                                 f"validation/test splits ({N_COPIES} of test)")
    assert f"first cpsc2018 records {up_ids}" in first_line and f"= ptb records {down_ids}" in first_line
    assert record["overlap"]["decision"] == "failed" and record["overlap"]["shared"]["test"] == N_COPIES
    # failed before training
    assert not checkpoint_file(study.options.results_dir, CELL.pretraining, study.profile).exists()


def test_drop_leaves_the_shared_records_out_and_changes_the_test_set_and_the_id(guarded):
    study, (_, down_ids) = guarded("drop")
    record = study.run(CELL)
    assert record["status"] == "ok", record["error"]
    n_test = len(study.dataset("ptb").indices("test"))
    assert record["sizes"]["test"] == n_test - N_COPIES
    assert not set(down_ids) & set(record["predictions"]["record_ids"])
    assert record["identity"]["overlap"] == {"mode": "drop", "dropped": {"test": N_COPIES, "val": 0}}
    assert record["overlap"]["decision"] == "dropped" and record["overlap"]["dropped"]["test"] == N_COPIES
    reported, _ = guarded("report")
    other = reported.run(CELL)
    assert other["identity"]["split_digest"] != record["identity"]["split_digest"]
    assert other["cell_id"] != record["cell_id"]
    assert differing_test_set(record, other) is not None  # compare refuses to pair them


def test_report_runs_on_every_record_and_records_what_is_shared(guarded):
    study, (up_ids, down_ids) = guarded("report")
    record = study.run(CELL)
    assert record["status"] == "ok", record["error"]
    assert record["sizes"]["test"] == len(study.dataset("ptb").indices("test"))
    assert record["overlap"]["decision"] == "reported"
    assert record["overlap"]["examples"]["test"] == [[u, d] for u, d in zip(up_ids, down_ids)]


def test_the_default_guard_finds_nothing_on_distinct_data_and_leaves_the_id_as_it_was(make_runner):
    study = make_runner()
    record = study.run(CELL)
    assert record["status"] == "ok", record["error"]
    assert record["overlap"]["decision"] == "none found" and record["overlap"]["checked"]
    assert "overlap" not in record["identity"]


def test_a_transferability_task_is_guarded_too(guarded):
    study, _ = guarded("fail")
    record = study.transferability(Transferability("cpsc2018", "ptb", "resnet1d18", 1.0, 0))
    assert record["status"] == "failed" and record["error"].startswith("OverlapError: upstream cpsc2018")


def test_a_checkpoint_moved_to_another_results_folder_keeps_its_fingerprints(make_runner, tmp_path):
    study = make_runner()
    study.upstream_checkpoint("cpsc2018", "resnet1d18", 0)
    moved = tmp_path / "elsewhere" / "ckpt.pt"
    moved.parent.mkdir()
    shutil.move(checkpoint_file(study.options.results_dir, CELL.pretraining, study.profile), moved)
    up = study.dataset("cpsc2018")
    prints = trained_on(moved)
    assert prints.digest() == training_fingerprints(up, dataset_fingerprints(up)).digest()
    assert len(prints) == int(np.isin(up.split, ("train", "val")).sum())
    assert trained_on({"state_dict": {}}) is None  # says nothing: unknown, never "none found"
    import torch
    ckpt = torch.load(moved, weights_only=True)
    ckpt["trained_on"]["record_ids"][0] = "edited"
    with pytest.raises(FingerprintError, match="does not match its digest"):
        trained_on(ckpt)


GIVEN = Cell("ptb", TINY, 1.0, "linear", 0, upstream="given")


@pytest.fixture
def leaky_given(make_runner, smoke_profile, tmp_path):
    """A runner for checkpoint ``given`` (tinycnn weights, its manifest written with ``checkpoint new OPTIONS``)
    on downstream ptb whose first test records are cpsc2018 training recordings, re-scaled; georgia has neither
    files nor a stand-in size in its profile."""
    def make(*options: str):
        weights = tiny_weights(tmp_path / "w.pt", outputs=5)
        name = register_checkpoint_file(new_checkpoint(tmp_path, "given", weights, *options))
        no_georgia = {k: v for k, v in smoke_profile.synthetic_records.items() if k != "georgia"}  # not at hand
        study = make_runner(profile=dataclasses.replace(smoke_profile, upstreams=(name,), downstreams=("ptb",),
                                                        models=(TINY,), fractions=(1.0,),
                                                        synthetic_records=no_georgia))
        return study, _leaky(study)
    return make


def test_a_checkpoints_fingerprint_file_finds_the_recordings_it_was_trained_on(make_runner, leaky_given, tmp_path):
    up = make_runner().dataset("cpsc2018")
    save_fingerprints(training_fingerprints(up, dataset_fingerprints(up)), tmp_path / "trained-on.json")
    study, (up_ids, down_ids) = leaky_given("--fingerprints", str(tmp_path / "trained-on.json"))
    record = study.run(GIVEN)
    assert record["status"] == "failed"
    assert record["error"].startswith(f"OverlapError: upstream given was trained on recordings of downstream ptb's "
                                      f"validation/test splits ({N_COPIES} of test)")
    assert f"= ptb records {down_ids}" in record["error"]


def test_a_checkpoint_pretrained_on_a_dataset_is_checked_against_all_of_its_records(leaky_given):
    study, _ = leaky_given("--pretrained-on", "cpsc2018")
    record = study.run(GIVEN)
    assert record["status"] == "failed" and record["overlap"]["shared"]["test"] == N_COPIES


@pytest.mark.parametrize("options, not_compared", [
    ((), []),
    (("--pretrained-on", "Hospital2019"), ["Hospital2019"]),  # no dataset of ecgbench's
    (("--pretrained-on", "georgia"), ["georgia"]),  # no files, no stand-in size in the profile
    (("--pretrained-on", "ptbxl", "--pretrained-on", "Hospital2019"), ["Hospital2019"]),  # ptbxl shares nothing
], ids=["unknown", "not-a-dataset-here", "not-at-hand", "the-part-compared-shares-nothing"])
def test_a_checkpoints_overlap_is_unknown_where_its_training_data_cannot_be_compared(leaky_given, options,
                                                                                      not_compared):
    """Not "none found": a dataset that cannot be fingerprinted here may hold the test records, so the guard
    cannot say (the cell runs; its record says "unknown" and names what it could not compare)."""
    study, _ = leaky_given(*options)
    record = study.run(GIVEN)
    assert record["status"] == "ok", record["error"]
    assert record["overlap"]["decision"] == "unknown"
    assert record["overlap"].get("not_compared", []) == not_compared
    row = next(line for line in "\n".join(overlap_section([record])).splitlines() if line.startswith("| given "))
    assert (f"unknown (not compared: {', '.join(not_compared)})" if not_compared else "| unknown ") in row


def test_what_can_be_compared_fails_the_cell_even_when_the_rest_cannot(leaky_given):
    study, _ = leaky_given("--pretrained-on", "cpsc2018", "--pretrained-on", "Hospital2019")
    record = study.run(GIVEN)
    assert record["status"] == "failed" and record["overlap"]["shared"]["test"] == N_COPIES
    assert record["overlap"]["not_compared"] == ["Hospital2019"]


@pytest.mark.parametrize("collection", ["CinC2021", "PhysioNet/CinC 2020"])
def test_a_checkpoint_pretrained_on_a_challenge_collection_has_seen_all_of_its_member_downstream(leaky_given,
                                                                                                  collection):
    """The PhysioNet/CinC Challenge training sets hold all of PTB (and PTB-XL, CPSC2018, Georgia): every
    validation and test record of downstream ptb was in the checkpoint's training data."""
    study, _ = leaky_given("--pretrained-on", collection)
    record = study.run(GIVEN)
    ptb = study.dataset("ptb")
    assert record["status"] == "failed"
    assert record["overlap"]["shared"] == {"val": len(ptb.indices("val")), "test": len(ptb.indices("test"))}
    assert "INCART" in record["overlap"]["not_compared"] and "ptb" not in record["overlap"]["not_compared"]


def test_a_checkpoints_named_dataset_is_not_compared_as_a_stand_in_with_real_downstream_data(leaky_given):
    study, _ = leaky_given("--pretrained-on", "cpsc2018")
    assert study.trained_on("given", "real") == (None, ("cpsc2018",))
    prints, not_compared = study.trained_on("given", "synthetic")
    assert len(prints) == len(study.dataset("cpsc2018").split) and not_compared == ()


def test_an_unknown_overlap_mode_is_refused_naming_the_profile(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[mine]\ndescription = ""\nupstreams = ["ptbxl"]\ndownstreams = ["ptb"]\nmodels = ["gru"]\n'
                    'fractions = [1.0]\nregimes = ["finetune"]\nseeds = 1\n'
                    'synthetic_records = { ptbxl = 60, ptb = 60 }\n'
                    'pretrain = { epochs = 1, batch_size = 8, lr = 0.001 }\ntrain = { epochs = 1, batch_size = 8, '
                    'lr = 0.001 }\noverlap = "ignore"\n')
    with pytest.raises(ProfileError, match=re.escape(f"{path} [mine]: overlap: unknown overlap 'ignore' (known: "
                                                     "fail, drop, report)")):
        load_profiles(path)


def _record(upstream, downstream, overlap=None):
    return {"cell": {"upstream": upstream, "downstream": downstream},
            **({"overlap": overlap} if overlap else {})}


def test_the_leaderboard_section_says_none_found_only_where_it_checked():
    from ecgbench.results.overlap_section import overlap_section

    checked = {"mode": "fail", "checked": True, "decision": "none found", "shared": {"val": 0, "test": 0}}
    failed = {"mode": "fail", "checked": True, "decision": "failed", "shared": {"val": 1, "test": 3}}
    unknown = {"mode": "fail", "checked": False, "decision": "unknown", "shared": {}}
    text = "\n".join(overlap_section([_record("ptbxl", "ptb", checked), _record("ptbxl", "georgia", failed),
                                      _record("mine", "ptb", unknown), _record("cpsc2018", "ptb"),
                                      _record(None, "ptb")]))
    assert "| ptbxl      | ptb          | fail    | 0 / 0" in text and "none found" in text
    assert "| ptbxl      | georgia      | fail    | 1 / 3" in text and "failed" in text
    assert "| mine       | ptb          | fail    | - / -" in text and "unknown" in text
    assert "| cpsc2018   | ptb          | -       | - / -" in text and "not checked" in text
    assert overlap_section([_record(None, "ptb")]) == []
