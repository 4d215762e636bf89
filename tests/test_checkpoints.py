"""Given checkpoints as upstreams: ``ecgbench checkpoint new`` inspects weights and writes their manifest; a
profile names the checkpoint like a dataset; every unusable file is refused naming it and what differs."""
import dataclasses
import tomllib

import pytest
import tiny_model  # registers tinycnn (or the demo package does)
import torch
from tiny_model import new_checkpoint, tiny_weights

from ecgbench import cli
from ecgbench.checkpoints import (
    CheckpointError,
    get_checkpoint,
    given_checkpoint,
    load_manifest,
    register_checkpoint_file,
)
from ecgbench.models import build_model
from ecgbench.profiles import _validate
from ecgbench.study import Cell, ProfileError, enumerate_cells, enumerate_transferability, pretrainings_of

TINY = tiny_model.NAME


def test_checkpoint_new_inspects_the_weights_and_writes_a_manifest(tmp_path, capsys):
    weights = tiny_weights(tmp_path / "w.pt")
    out = new_checkpoint(tmp_path, "myssl", weights, "--pretrained-on", "ptbxl", "--pretrained-on", "CinC2021",
               "--licence", "CC-BY-4.0", "--citation", "Me et al.")
    printed = capsys.readouterr().out
    assert "load into tinycnn exactly (no missing or unexpected key); transfer replaces head (3 outputs)" in printed
    table = tomllib.loads(out.read_text())
    assert table["weights"] == "w.pt" and table["outputs"] == 3 and table["pretrained_on"] == ["ptbxl", "CinC2021"]
    m = load_manifest(out)
    assert m.weights_path == weights.resolve() and len(m.sha256) == 64 and m.licence == "CC-BY-4.0"
    assert m.pretrained_on_known and m.fingerprints_path is None and m.input.describe() == "100 Hz x 10 s, 12 leads"
    unknown = load_manifest(new_checkpoint(tmp_path, "anon", weights))
    assert unknown.pretrained_on == ("unknown",) and not unknown.pretrained_on_known


def test_a_fingerprint_file_is_stored_and_must_exist(tmp_path):
    weights = tiny_weights(tmp_path / "w.pt")
    (tmp_path / "fp.json").write_text("{}")
    m = load_manifest(new_checkpoint(tmp_path, "fp", weights, "--fingerprints", str(tmp_path / "fp.json")))
    assert m.fingerprints_path == (tmp_path / "fp.json").resolve()
    (tmp_path / "fp.json").unlink()
    with pytest.raises(CheckpointError, match=r"fp.toml: fingerprints file .*fp.json does not exist"):
        load_manifest(tmp_path / "fp.toml")


class Payload:
    """An object that only unpickles by running code: what weights_only refuses."""


@pytest.mark.parametrize("content, message", [
    (lambda p: torch.save([torch.zeros(2)], p), r"bad.pt: not a state dict \(a mapping of parameter names to "
                                                r"tensors\), got list"),
    (lambda p: torch.save({"model": Payload()}, p), r"bad.pt: holds Python objects other than tensors "
                                                    r"\(test_checkpoints.Payload\), which weights_only loading "
                                                    r"refuses to run"),
    (lambda p: p.write_bytes(b"not a torch file at all"), r"bad.pt: not a torch weights file"),
    (lambda p: tiny_weights(p, model="resnet1d18"), r"bad.pt: does not fit model 'tinycnn' \(fits another model\?\)|"
                                                    r"bad.pt: does not fit model 'tinycnn': no 2-D head.weight"),
])
def test_unusable_weights_are_refused_naming_the_file(tmp_path, content, message, capsys):
    content(tmp_path / "bad.pt")
    out = tmp_path / "bad.toml"
    assert cli.main(["checkpoint", "new", "bad", "--model", TINY, "--weights", str(tmp_path / "bad.pt"),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "bad.pt") in err
    with pytest.raises(CheckpointError, match=message):
        from ecgbench.checkpoints import check_fit, read_state_dict
        check_fit(read_state_dict(tmp_path / "bad.pt"), TINY, tmp_path / "bad.pt")
    assert not out.exists()


def test_weights_that_lack_or_add_keys_are_named(tmp_path):
    state = build_model(TINY, 3).state_dict()
    first = next(iter(state))
    state["extra.weight"] = state.pop(first)
    torch.save(state, tmp_path / "w.pt")
    from ecgbench.checkpoints import check_fit, read_state_dict
    with pytest.raises(CheckpointError, match=rf"missing 1 keys \['{first}'\]; unexpected 1 keys \['extra.weight'\]"):
        check_fit(read_state_dict(tmp_path / "w.pt"), TINY, tmp_path / "w.pt")


def test_another_class_count_or_changed_weights_are_refused_when_used(tmp_path):
    weights = tiny_weights(tmp_path / "w.pt")
    out = new_checkpoint(tmp_path, "counted", weights)
    out.write_text(out.read_text().replace("outputs = 3", "outputs = 5"))
    name = register_checkpoint_file(out)
    with pytest.raises(CheckpointError, match=r"w.pt: its last layer head has 3 outputs, the manifest says 5 classes"):
        given_checkpoint(name)
    out.write_text(out.read_text().replace("outputs = 5", "outputs = 3"))
    assert given_checkpoint(name)["classes"] == ["counted0", "counted1", "counted2"]
    tiny_weights(weights, seed=1)
    with pytest.raises(CheckpointError, match=r"counted.toml: weights .*w.pt have sha256 [0-9a-f]{64}, the manifest "
                                              r"says [0-9a-f]{64}: the weights changed"):
        given_checkpoint(name)


@pytest.mark.parametrize("edit, message", [
    (("name = \"m\"", "name = \"ptbxl\""), r"checkpoint name 'ptbxl' is already an upstream \(a dataset\)"),
    (("name = \"m\"", "name = \"random\""), r"checkpoint name 'random' is already an upstream \(the built-in random"),
    (("name = \"m\"", "name = \"a->b\""), r"name 'a->b': letters, digits"),
    (("rate_hz = 100", "rate_hz = 500"), r"input 500 Hz x 10 s, 12 leads differs from model 'tinycnn''s 100 Hz"),
    (("pretrained_on = [\"unknown\"]", "pretrained_on = [\"unknown\", \"ptbxl\"]"),
     "names datasets and \"unknown\""),
    (("pretrained_on = [\"unknown\"]", "pretrained_on = []"), "pretrained_on must be a non-empty list"),
    (("licence = \"\"", "licence = \"\"\nlicense = \"MIT\""), r"unknown keys \['license'\]"),
    (("model = \"tinycnn\"", "model = \"nosuch\""), "model 'nosuch' is not registered"),
])
def test_a_bad_manifest_is_refused_naming_its_file_and_key(tmp_path, edit, message):
    out = new_checkpoint(tmp_path, "m", tiny_weights(tmp_path / "w.pt"))
    assert edit[0] in out.read_text()
    out.write_text(out.read_text().replace(*edit))
    with pytest.raises(CheckpointError, match=message) as raised:
        register_checkpoint_file(out)
    assert str(out) in str(raised.value)


@pytest.fixture
def given_profile(tmp_path, smoke_profile):
    name = register_checkpoint_file(new_checkpoint(tmp_path, "given", tiny_weights(tmp_path / "w.pt", outputs=5)))
    return dataclasses.replace(smoke_profile, upstreams=(name, "random"), downstreams=("ptb",),
                               models=(TINY, "gru"), fractions=(1.0,))


def test_a_checkpoint_upstream_has_its_models_cells_and_is_never_trained(given_profile):
    cells = enumerate_cells(given_profile)
    given = [c.key for c in cells if c.upstream == "given"]
    assert given == ["given->ptb-tinycnn-f1.0-finetune-s0", "given->ptb-tinycnn-f1.0-linear-s0"]
    assert list(pretrainings_of(cells)) == []
    assert [t.key for t in enumerate_transferability(given_profile) if t.upstream == "given"] == \
        ["given->ptb-tinycnn-f1.0-s0"]
    with pytest.raises(ProfileError, match="checkpoint 'given' holds weights of model 'tinycnn', which models does "
                                           "not name"):
        _validate(dataclasses.replace(given_profile, models=("gru",)), "my.toml")
    with pytest.raises(ProfileError, match=r"downstreams: 'given' is an upstream \(a checkpoint\)"):
        _validate(dataclasses.replace(given_profile, downstreams=("ptb", "given")), "my.toml")


def test_a_checkpoint_cell_starts_from_its_weights_and_its_id_follows_them(make_runner, given_profile, tmp_path):
    study = make_runner(profile=given_profile)
    cell = Cell("ptb", TINY, 1.0, "linear", 0, "given")
    model, cost = study.initial_model(cell)
    weights = torch.load(tmp_path / "w.pt", weights_only=True)
    assert cost == {"pretrain_s": 0.0, "pretrain_built_here": False}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items() if not k.startswith("head"))
    record = study.run(cell)
    assert record["status"] == "ok", record["error"]
    assert record["identity"]["upstream_weights_sha256"] == get_checkpoint("given").sha256
    score = study.transferability(enumerate_transferability(given_profile)[0])
    assert score["status"] == "ok", score["error"]
    old_id = record["cell_id"]
    tiny_weights(tmp_path / "w.pt", outputs=5, seed=7)
    new_checkpoint(tmp_path, "given", tmp_path / "w.pt")  # the manifest accepts the new weights: a new sha256
    from ecgbench.study import identity_hash
    assert identity_hash(study.identity(cell)) != old_id


def test_ecgbench_checkpoints_lists_what_is_registered(tmp_path, capsys):
    weights = tiny_weights(tmp_path / "w.pt")
    register_checkpoint_file(new_checkpoint(tmp_path, "listed", weights, "--pretrained-on", "ptbxl"))
    capsys.readouterr()
    assert cli.main(["checkpoints"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| listed "))
    assert [c.strip() for c in row.strip("|").split("|")][:4] == ["listed", TINY, "100 Hz x 10 s, 12 leads", "ptbxl"]
