import dataclasses

import numpy as np
import pytest
import torch

import ecgbench.runner as runner
from ecgbench.engine.config import TrainConfig
from ecgbench.results.store import read_record, record_path
from ecgbench.study import Cell, identity_hash

SCRATCH = Cell("ptb", "resnet1d18", 0.25, "scratch", 0)
FINETUNE = Cell("ptb", "resnet1d18", 0.25, "finetune", 0, upstream="cpsc2018")
LINEAR = Cell("ptb", "resnet1d18", 0.25, "linear", 0, upstream="cpsc2018")


def test_a_cell_writes_a_valid_record_with_finite_test_metrics(make_runner):
    study = make_runner()
    record = study.run(FINETUNE)
    assert record["status"] == "ok", record["error"]
    assert read_record(record_path(study.options.results_dir, FINETUNE.file_stem)) == record
    assert 0 <= record["test"]["f1_weighted"] <= 1
    assert record["identity"]["checkpoint_id"] is not None
    assert record["sizes"]["test"] == len(record["predictions"]["y_prob"])
    assert record["timing"]["pretrain_s"] > 0 and record["best_epoch"] == 0


def test_same_seed_same_numbers_in_a_fresh_process_state(make_runner):
    first = make_runner("a").run(SCRATCH)
    second = make_runner("b").run(SCRATCH)
    assert first["test"] == second["test"]
    assert first["predictions"] == second["predictions"]
    assert first["cell_id"] == second["cell_id"]


def test_fraction_subsets_are_nested_random_and_seeded(make_runner):
    study = make_runner()
    subsets = [set(study.train_subset(dataclasses.replace(SCRATCH, fraction=f))) for f in (0.05, 0.25, 1.0)]
    assert subsets[0] < subsets[1] < subsets[2]
    train = study.dataset("ptb").indices("train")
    assert subsets[2] == set(train)
    assert subsets[1] != set(train[:len(subsets[1])])  # random, not a file-order prefix
    assert subsets[1] != set(study.train_subset(dataclasses.replace(SCRATCH, seed=1)))


def _transferred_and_new(model: torch.nn.Module, checkpoint: dict) -> tuple[set, set]:
    """Names of the tensors equal to the checkpoint's, and of those that differ from it."""
    state = model.state_dict()
    same = {k for k, v in checkpoint.items() if v.shape == state[k].shape and torch.equal(v, state[k])}
    return same, set(state) - same


def test_a_finetune_cell_transfers_every_tensor_but_the_last_layer(make_runner):
    study = make_runner()
    ckpt, _ = study.upstream_checkpoint("cpsc2018", "resnet1d18", 0)
    model, _ = study.initial_model(FINETUNE)
    transferred, new = _transferred_and_new(model, ckpt["state_dict"])
    assert new == {"head.fc2.weight", "head.fc2.bias"}
    assert {"head.fc1.weight", "head.fc1.bias"} <= transferred  # the paper keeps the pre-trained fc1
    assert model.head.fc2.out_features == 2  # ptb has 2 classes, cpsc2018 9
    assert all(p.requires_grad for p in model.parameters())


def test_a_linear_cell_trains_the_last_layer_alone_and_keeps_batchnorm_statistics(make_runner, monkeypatch):
    study = make_runner()
    ckpt, _ = study.upstream_checkpoint("cpsc2018", "resnet1d18", 0)
    model, _ = study.initial_model(LINEAR)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.fc2.weight", "head.fc2.bias"}
    after_epoch = {}
    real_fit = runner.fit

    def spy(model, *args, **kwargs):
        result = real_fit(model, *args, **kwargs)
        after_epoch.update(model.state_dict())
        return result

    monkeypatch.setattr(runner, "fit", spy)
    assert study.run(LINEAR)["status"] == "ok"
    moved = {k for k, v in ckpt["state_dict"].items()
             if not k.startswith("head.fc2.") and not torch.equal(after_epoch[k], v)}
    assert not moved, f"frozen tensors changed over an epoch: {sorted(moved)}"
    assert any(k.endswith("running_mean") for k in ckpt["state_dict"])


def test_the_whole_head_policy_is_an_ablation_with_its_own_cell_ids(make_runner):
    paper = make_runner("paper")
    ablation = make_runner("ablation", profile=dataclasses.replace(paper.profile, head_policy="head"))
    ckpt, _ = ablation.upstream_checkpoint("cpsc2018", "resnet1d18", 0)
    model, _ = ablation.initial_model(FINETUNE)
    _, new = _transferred_and_new(model, ckpt["state_dict"])
    assert new == {"head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias"}
    assert ablation.identity(FINETUNE)["hyperparameters"]["head_policy"] == "head"
    assert identity_hash(ablation.identity(FINETUNE)) != identity_hash(paper.identity(FINETUNE))
    assert identity_hash(ablation.identity(SCRATCH)) == identity_hash(paper.identity(SCRATCH))


def test_stored_cell_is_reused_and_a_changed_hyperparameter_reruns_it(make_runner, monkeypatch):
    study = make_runner()
    first = study.run(SCRATCH)
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("a stored cell must not train again"))
    assert study.run(SCRATCH) == first
    monkeypatch.undo()
    changed = dataclasses.replace(study.profile, train=TrainConfig(epochs=1, batch_size=8, lr=0.001))
    rerun = make_runner(profile=changed).run(SCRATCH)
    assert rerun["cell_id"] != first["cell_id"]
    assert rerun["created"] >= first["created"]


def test_a_dataset_too_small_for_every_split_fails_its_cell_saying_which_split_is_empty(make_runner, smoke_profile):
    tiny = dataclasses.replace(smoke_profile, synthetic_records={**smoke_profile.synthetic_records, "ptb": 3})
    failed = make_runner("tiny", profile=tiny).run(SCRATCH)
    assert failed["status"] == "failed"
    assert ("DataError: dataset ptb (synthetic, 3 records): the split leaves val empty ({'train': 2, 'val': 0, "
            "'test': 1})") in failed["error"]


def test_a_failing_cell_is_recorded_as_failed_and_the_next_cell_runs(make_runner, monkeypatch):
    study = make_runner()

    def explode(*args, **kwargs):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(runner, "fit", explode)
    failed = study.run(SCRATCH)
    assert failed["status"] == "failed" and failed["test"] is None
    assert failed["error"].startswith("RuntimeError: simulated out of memory")
    assert read_record(record_path(study.options.results_dir, SCRATCH.file_stem))["status"] == "failed"
    monkeypatch.undo()
    assert study.run(dataclasses.replace(SCRATCH, model="gru"))["status"] == "ok"
    assert make_runner(rerun="failed").run(SCRATCH)["status"] == "ok"


def test_test_predictions_are_stored_in_test_split_order(make_runner):
    study = make_runner()
    record = study.run(SCRATCH)
    ds = study.dataset("ptb")
    test_idx = ds.indices("test")
    assert record["predictions"]["record_ids"] == ds.record_ids[test_idx].tolist()
    assert np.array_equal(np.array(record["predictions"]["y_true"]), ds.labels[test_idx])


def test_a_cell_never_mixes_real_and_synthetic_data(make_runner):
    study = make_runner()
    assert study.mixed_sources(FINETUNE) is None and study.mixed_sources(SCRATCH) is None
    study._datasets["cpsc2018"] = dataclasses.replace(study.dataset("cpsc2018"), source="real")
    reason = study.mixed_sources(FINETUNE)
    assert reason.startswith("cpsc2018->ptb-resnet1d18-f0.25-finetune-s0: upstream cpsc2018 is real data but "
                             "downstream ptb is synthetic")
