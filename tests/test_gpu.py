"""The CUDA path of the core (bf16 autocast, cuDNN, pinned copies): deterministic and close to float32 on CPU.

Skipped without a GPU; run on one with ``pytest tests/test_gpu.py``.
"""
import numpy as np
import pytest
import torch

from ecgbench.engine.config import TrainConfig
from ecgbench.engine.train import ArraySplit, fit, predict
from ecgbench.models import build_model
from ecgbench.study import Cell

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def _split(dataset, name: str) -> ArraySplit:
    idx = dataset.indices(name)
    return ArraySplit(dataset.signals[idx], dataset.labels[idx], dataset.classes)


@pytest.fixture(scope="module")
def ptb(data_cache):
    from ecgbench.data import open_dataset

    return open_dataset("ptb", synthetic_records=120, cache_dir=data_cache)


@pytest.mark.parametrize("model_name", ["resnet1d18", "lstm"])
def test_same_seed_gives_the_same_weights_on_the_gpu(ptb, model_name):
    config = TrainConfig(epochs=2, batch_size=16, lr=0.001)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        result = fit(build_model(model_name, len(ptb.classes)), _split(ptb, "train"), _split(ptb, "val"), config,
                     seed=1, device=CUDA)
        runs.append(result)
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"] for h in runs[1].history]
    for key, value in runs[0].best_state.items():
        assert torch.equal(value, runs[1].best_state[key]), key


@pytest.mark.parametrize("model_name", ["resnet1d18", "gru"])
def test_bf16_predictions_match_float32_on_the_cpu(ptb, model_name):
    torch.manual_seed(0)
    model = build_model(model_name, len(ptb.classes)).eval()
    x = ptb.signals[:32]
    on_cpu = predict(model, x, 16, CPU)
    on_gpu = predict(model.to(CUDA), x, 16, CUDA)
    assert on_gpu.dtype == np.float32 and np.isfinite(on_gpu).all()
    np.testing.assert_allclose(on_gpu, on_cpu, atol=0.03)


def test_a_cell_runs_on_the_gpu_and_its_record_says_so(make_runner):
    study = make_runner(device="cuda")
    record = study.run(Cell("ptb", "resnet1d18", 0.25, "finetune", 0, "cpsc2018"))
    assert record["status"] == "ok", record["error"]
    assert record["environment"]["device"].startswith("cuda")
    assert torch.cuda.get_device_name(0) in record["environment"]["device_name"]
