"""A model's own input (rate, seconds, leads): declared at registration, data prepared per spec with the same
records, labels and split, and a checkpoint never fed an input it was not trained on."""
import dataclasses

import numpy as np
import pytest
from data_fixtures import write_ptb
from tiny_model import build_tiny

from ecgbench.data import open_dataset
from ecgbench.data.dataset import array_digest
from ecgbench.data.prepare_spec import prepare_at
from ecgbench.data.synthetic import generate, load_synthetic
from ecgbench.inputs import DEFAULT_INPUT, STANDARD_LEADS, InputSpec
from ecgbench.models import MODELS, ModelSpec, model_input, register_model
from ecgbench.runner import check_same_input
from ecgbench.study import Cell

FAST = "tinycnn_200hz"  # tinycnn reading 200 Hz x 5 s: its global pool takes any length
if FAST not in MODELS.names():
    register_model(FAST, build_tiny, "cnn", rate_hz=200, seconds=5)
SPEC_200 = InputSpec(200, 5)


def test_the_study_models_read_100_hz_for_10_s_and_a_model_declares_its_own():
    assert all(model_input(m) == DEFAULT_INPUT for m in ("resnet1d18", "resnet1d101", "lstm", "gru"))
    assert DEFAULT_INPUT.n_samples == 1000 and DEFAULT_INPUT.leads == STANDARD_LEADS
    assert model_input(FAST) == SPEC_200 and SPEC_200.n_samples == 1000
    assert SPEC_200.describe() == "200 Hz x 5 s, 12 leads" and SPEC_200.tag == "200hz-5s"


@pytest.mark.parametrize("kwargs, message", [
    ({"rate_hz": 0}, "input rate_hz must be a positive finite number, got 0"),
    ({"seconds": float("nan")}, "input seconds must be a positive finite number"),
    ({"leads": ("II", "II")}, "input leads must be distinct names"),
    ({"leads": ("II", "V7")}, "input leads must be distinct names"),
])
def test_an_impossible_input_is_refused_when_the_model_is_registered(kwargs, message):
    with pytest.raises(ValueError, match=f"model 'broken': {message}"):
        register_model("broken", build_tiny, "cnn", **kwargs)
    assert "broken" not in MODELS.names()


def test_model_spec_refuses_an_input_that_is_no_input_spec():
    with pytest.raises(ValueError, match="model input must be an ecgbench.inputs.InputSpec"):
        ModelSpec(build_tiny, "cnn", (500, 10))


def test_the_default_synthetic_path_is_unchanged(data_cache):
    ds = load_synthetic("ptb", 40, 0, data_cache)
    fresh = generate("ptb", 40, 0)
    assert ds.input == DEFAULT_INPUT and ds.digest == fresh.digest
    np.testing.assert_array_equal(ds.signals, fresh.signals)


def test_synthetic_data_at_another_spec_are_the_same_records_resampled(data_cache):
    base = load_synthetic("ptb", 40, 0, data_cache)
    spec = InputSpec(500, 8, ("II", "V1", "V5"))
    ds = open_dataset("ptb", synthetic_records=40, cache_dir=data_cache, spec=spec)
    assert ds.signals.shape == (40, 4000, 3) and ds.input == spec
    for field in ("record_ids", "patient_ids", "split", "labels"):
        np.testing.assert_array_equal(getattr(ds, field), getattr(base, field))
    assert ds.digest != base.digest
    # every 5th sample of 500 Hz is close to the 100 Hz original of lead II (column 1) for the first 8 s
    np.testing.assert_allclose(ds.signals[:, ::5, 0][:, 50:750], base.signals[:, 50:750, 1], atol=0.08)
    again = load_synthetic("ptb", 40, 0, data_cache, spec)
    np.testing.assert_array_equal(again.signals, ds.signals)
    assert again.digest == ds.digest


def test_a_real_dataset_at_another_spec_reads_the_same_records_again(tmp_path):
    records = {f"patient{i:03d}/s{i:04d}lre": "Myocardial infarction" if i % 2 else "Healthy control"
               for i in range(1, 9)}
    write_ptb(tmp_path / "data", records)
    spec = InputSpec(250, 10, ("I", "V2"))
    prepared = prepare_at("ptb", tmp_path / "data", spec, cache_dir=tmp_path / "cache", progress=False)
    base = prepare_at("ptb", tmp_path / "data", DEFAULT_INPUT, cache_dir=tmp_path / "cache", progress=False)
    assert not base.folder.name.endswith(spec.tag) and prepared.folder.name == f"{base.folder.name}-{spec.tag}"
    ds, ref = prepared.dataset, base.dataset
    assert ds.signals.shape == (len(ref.record_ids), 2500, 2) and ds.input == spec and ref.input == DEFAULT_INPUT
    for field in ("record_ids", "patient_ids", "split", "labels"):
        np.testing.assert_array_equal(getattr(ds, field), getattr(ref, field))
    assert prepared.info["input"] == spec.to_dict() and prepared.info["based_on"] == base.info["cache_key"]
    # read from the 1000 Hz files, not up-sampled from 100 Hz: lead V2 at 250 Hz against the 100 Hz entry
    np.testing.assert_allclose(ds.signals[:, ::10, 1][:, 20:380], ref.signals[:, ::4, 7][:, 20:380], atol=0.15)
    assert prepare_at("ptb", tmp_path / "data", spec, cache_dir=tmp_path / "cache").built is False


def test_a_model_with_its_own_input_trains_on_the_same_subset_as_the_others(make_runner, smoke_profile):
    study = make_runner(profile=dataclasses.replace(smoke_profile, models=("resnet1d18", FAST)))
    own, study_model = (Cell("ptb", m, 0.25, "scratch", 0) for m in (FAST, "resnet1d18"))
    ds_own, ds_std = study.model_data("ptb", FAST), study.model_data("ptb", "resnet1d18")
    np.testing.assert_array_equal(ds_own.record_ids[study.train_subset(own)],
                                  ds_std.record_ids[study.train_subset(study_model)])
    assert study.identity(own)["input"] == SPEC_200.to_dict()
    assert study.identity(study_model)["input"] == DEFAULT_INPUT.to_dict()
    record = study.run(Cell("ptb", FAST, 0.25, "finetune", 0, upstream="cpsc2018"))
    assert record["status"] == "ok", record["error"]
    ckpt, _ = study.upstream_checkpoint("cpsc2018", FAST, 0)
    assert ckpt["input"] == SPEC_200.to_dict()
    assert record["identity"]["downstream_digest"] == ds_own.digest != ds_std.digest


def test_a_checkpoint_is_never_fed_another_input():
    check_same_input({"input": DEFAULT_INPUT.to_dict()}, DEFAULT_INPUT, "x")
    with pytest.raises(ValueError, match=r"^c: the upstream checkpoint was trained on input 100 Hz x 10 s, 12 "
                                         r"leads, but this cell's model receives 250 Hz x 4 s, 12 leads$"):
        check_same_input({"input": DEFAULT_INPUT.to_dict()}, InputSpec(250, 4), "c: the upstream checkpoint")
    with pytest.raises(ValueError, match="of unknown rate, length and leads"):
        check_same_input({}, DEFAULT_INPUT, "old")


def test_signals_of_another_shape_than_their_spec_are_refused():
    ds = generate("ptb", 10, 0)
    with pytest.raises(ValueError, match=r"ptb: signals at 200 Hz x 10 s, 12 leads must be \[n, 2000, 12\], got "
                                         r"\(10, 1000, 12\)"):
        dataclasses.replace(ds, input=InputSpec(200, 10))
    assert array_digest(ds.signals) == array_digest(np.array(ds.signals))


def test_ecgbench_models_lists_each_models_input(capsys):
    from ecgbench import cli

    assert cli.main(["models"]) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["resnet1d18"] == "100 Hz x 10 s, 12 leads" and rows[FAST] == "200 Hz x 5 s, 12 leads"
