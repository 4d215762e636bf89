"""The precision a cell computes in: detected CPU support, the per-model measured flag, the profile's policy, and
that it reaches the engine's step, the record, the cell id and the checkpoint."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from tiny_model import build_tiny
from torch import nn

from ecgbench import runner as runner_module
from ecgbench.engine import precision as engine_precision
from ecgbench.engine.config import TrainConfig
from ecgbench.engine.precision import autocast, cpu_has_native_bf16, resolve_precision
from ecgbench.engine.train import make_optimiser, train_step
from ecgbench.models import MODELS, register_model
from ecgbench.runner import CellRunner, checkpoint_file
from ecgbench.study import Cell, Pretraining, ProfileError, load_profiles

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd asimddp\n"


@pytest.mark.parametrize("cpuinfo, native", [(SAPPHIRE_RAPIDS, True), (ZEN4, True), (SKYLAKE, False),
                                             (GRAVITON3, True), (GRAVITON2, False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert cpu_has_native_bf16(cpuinfo) is native


def test_a_cpu_whose_flags_cannot_be_read_counts_as_without_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(engine_precision, "CPUINFO", tmp_path / "absent")
    assert cpu_has_native_bf16() is False


@pytest.mark.parametrize("policy, device, faster, native, expected", [
    ("auto", "cpu", True, True, "bf16"),
    ("auto", "cpu", True, False, "fp32"),  # the CPU lacks bf16: fp32 whatever the model's flag
    ("auto", "cpu", False, True, "fp32"),  # measured slower in bf16 (the GRU)
    ("auto", "cuda", False, False, "bf16"),
    ("fp32", "cuda", True, True, "fp32"),
    ("bf16", "cpu", False, False, "bf16"),  # asked for: correct, only slow
])
def test_the_policy_resolves_per_device_and_model(policy, device, faster, native, expected):
    assert resolve_precision(policy, torch.device(device), bf16_faster_on_cpu=faster,
                             cpu_native_bf16=native) == expected


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="precision policy 'fp16' is not one of"):
        resolve_precision("fp16", CPU, bf16_faster_on_cpu=True, cpu_native_bf16=True)
    with pytest.raises(ValueError, match="precision 'auto' is not one of"):
        TrainConfig(epochs=1, batch_size=8, lr=0.1, precision="auto")  # the engine takes resolved ones only


def test_the_measured_flags_of_the_built_in_models():
    """The GRU was measured slower in bf16 on the CPU; the ResNets faster (reports/performance.md)."""
    assert not MODELS.get("gru").bf16_faster_on_cpu
    assert all(MODELS.get(m).bf16_faster_on_cpu for m in ("resnet1d18", "resnet1d50", "resnet1d101"))


def test_the_flags_agree_with_the_committed_throughput_run():
    """Each model's flag is what the committed benchmark measured at batch 64: bf16 faster than fp32 or not."""
    data = json.loads((ROOT / "reports" / "throughput.json").read_text())
    steps = {(b["extra_info"]["model"], b["extra_info"]["dtype"]): b["stats"]["median"]
             for b in data["benchmarks"] if b["extra_info"].get("case") == "train"
             and b["extra_info"].get("batch") == 64 and b["extra_info"].get("device") == "cpu"}
    measured = {m: steps[(m, "float32")] > steps[(m, "bf16-autocast")]
                for m, dtype in steps if dtype == "bf16-autocast" and (m, "float32") in steps}
    if not measured:
        pytest.skip("the committed throughput run has no bf16 train steps (measured on a CPU without bf16)")
    assert measured == {m: MODELS.get(m).bf16_faster_on_cpu for m in measured}


def _linear_output_dtypes(model: nn.Module) -> list[torch.dtype]:
    seen = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_engine_step_runs_under_autocast_in_bf16_only(precision, dtype):
    torch.manual_seed(0)
    model = build_tiny(3).train()
    seen = _linear_output_dtypes(model)
    x, y = torch.randn(2, 1000, 12), torch.zeros(2, 3)
    loss = train_step(model, make_optimiser(model.parameters(), 1e-3, CPU), x, y, CPU, precision)
    assert seen and set(seen) == {dtype}
    assert loss.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())


def test_autocast_leaves_float64_alone():
    with autocast(CPU, "bf16"):
        assert (torch.ones(2, 2, dtype=torch.float64) @ torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.fixture
def tiny_bf16(make_runner, smoke_profile):
    """``make(native)``: a runner of the smoke profile over a tiny CNN flagged faster in bf16, on a CPU with or
    without native bf16 (mocked)."""
    register_model("tinybf16", build_tiny, "cnn", bf16_faster_on_cpu=True)
    profile = dataclasses.replace(smoke_profile, models=("tinybf16",))

    def make(native: bool, monkeypatch) -> CellRunner:
        monkeypatch.setattr(CellRunner, "cpu_native_bf16", native)
        return make_runner(profile=profile, device="cpu", results=f"results-{native}")

    return make


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_the_record_the_id_and_the_checkpoint_carry_the_precision(tiny_bf16, monkeypatch, native, expected):
    runner = tiny_bf16(native, monkeypatch)
    fits = []
    real_fit = runner_module.fit
    monkeypatch.setattr(runner_module, "fit", lambda *a, **k: fits.append(a[3].precision) or real_fit(*a, **k))
    record = runner.run(Cell("ptb", "tinybf16", 1.0, "finetune", 0, "cpsc2018"))
    assert record["status"] == "ok", record["error"]
    assert record["identity"]["precision"] == expected and fits == [expected, expected]  # pre-training, cell
    ckpt = torch.load(checkpoint_file(runner.options.results_dir, Pretraining("cpsc2018", "tinybf16", 0),
                                      runner.profile),
                      weights_only=True)
    assert ckpt["precision"] == expected


def test_the_cell_id_and_checkpoint_id_differ_by_precision(tiny_bf16, monkeypatch):
    cell = Cell("ptb", "tinybf16", 1.0, "finetune", 0, "cpsc2018")
    ids = {}
    for native in (True, False):
        runner = tiny_bf16(native, monkeypatch)
        ids[native] = runner.identity(cell), runner.checkpoint_id("cpsc2018", "tinybf16", 0)
    assert ids[True][0]["precision"] == "bf16" and ids[False][0]["precision"] == "fp32"
    assert ids[True][0]["checkpoint_id"] != ids[False][0]["checkpoint_id"]
    assert ids[True][1] != ids[False][1]


def test_a_model_measured_slower_in_bf16_trains_in_fp32_on_a_bf16_cpu(make_runner, monkeypatch):
    monkeypatch.setattr(CellRunner, "cpu_native_bf16", True)
    assert make_runner(device="cpu").precision("gru") == "fp32"
    forced = dataclasses.replace(make_runner().profile, precision="fp32")
    assert make_runner(profile=forced, device="cpu").precision("resnet1d18") == "fp32"


def _profile_text(extra: str = "", train_extra: str = "") -> str:
    return ("[p]\ndescription = \"x\"\nupstreams = []\ndownstreams = [\"ptb\"]\nmodels = [\"gru\"]\n"
            "fractions = [1.0]\nregimes = [\"scratch\"]\nseeds = 1\nsynthetic_records = { ptb = 60 }\n"
            "pretrain = { epochs = 1, batch_size = 8, lr = 0.001 }\n"
            f"train = {{ epochs = 1, batch_size = 8, lr = 0.001{train_extra} }}\n{extra}")


def test_a_profile_sets_its_precision_policy(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(_profile_text('precision = "fp32"\n'))
    assert load_profiles(path)["p"].precision == "fp32"
    path.write_text(_profile_text())
    profile = load_profiles(path)["p"]
    assert profile.precision == "auto" and profile.hyperparameters()["precision"] == "auto"
    assert "precision" not in profile.hyperparameters()["train"]


@pytest.mark.parametrize("extra, train_extra, message", [
    ('precision = "fp16"\n', "", r"\[p\] precision: must be one of auto, fp32, bf16, got 'fp16'"),
    ("", ', precision = "bf16"', r"\[p\] train: unknown key 'precision': the precision is one setting of the whole"),
])
def test_a_bad_precision_in_a_profile_is_refused_by_name(tmp_path, extra, train_extra, message):
    path = tmp_path / "p.toml"
    path.write_text(_profile_text(extra, train_extra))
    with pytest.raises(ProfileError, match=message):
        load_profiles(path)


def test_the_grid_listing_shows_the_policy_not_an_unresolved_precision(capsys):
    from ecgbench.cli import main

    assert main(["grid", "--profile", "default"]) == 0
    out = capsys.readouterr().out
    assert "precision          auto" in out and "'precision'" not in out
