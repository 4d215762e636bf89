import numpy as np
import pytest
import torch
from torch import nn

from ecgbench.engine.config import TrainConfig
from ecgbench.engine.train import ArraySplit, NonFiniteLossError, fit, predict
from ecgbench.models import Classifier

CPU = torch.device("cpu")


class TinyBackbone(nn.Module):
    """Mean of each lead: enough to learn which leads carry an offset."""

    out_features = 12

    def forward(self, x):
        return x.mean(1)


def tiny_model(n_classes: int = 2) -> Classifier:
    torch.manual_seed(0)
    return Classifier(TinyBackbone(), nn.Linear(12, n_classes), head_factory=lambda i, n: nn.Linear(i, n))


def toy_split(n: int, seed: int) -> ArraySplit:
    """Class c is present when lead c carries a positive offset: learnable by a linear model."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.5).astype(np.uint8)
    x = rng.normal(0, 1, (n, 1000, 12)).astype(np.float32)
    x[:, :, :2] += 0.5 * (2.0 * y[:, None, :] - 1)
    return ArraySplit(x, y, ("A", "B"))


def test_loss_falls_and_validation_improves_on_a_learnable_problem():
    result = fit(tiny_model(), toy_split(128, 0), toy_split(64, 1), TrainConfig(epochs=15, batch_size=16, lr=0.05),
                 seed=0, device=CPU)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[result.best_epoch]["val_auroc_macro"] > 0.95
    assert {"epoch", "train_loss", "val_loss", "val_f1_weighted", "val_auroc_macro", "seconds"} <= set(
        result.history[0])


def test_best_epoch_is_chosen_on_validation_and_its_weights_are_a_copy():
    model = tiny_model()
    result = fit(model, toy_split(64, 0), toy_split(64, 1), TrainConfig(epochs=6, batch_size=16, lr=0.05),
                 seed=0, device=CPU)
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val_losses))
    snapshot = {k: v.clone() for k, v in result.best_state.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # mutate the live model: a view would follow, a copy must not
    for k, v in result.best_state.items():
        assert torch.equal(v, snapshot[k])
    assert not torch.equal(result.best_state["head.weight"], model.state_dict()["head.weight"])


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    # lr 0 keeps the validation loss constant: the first epoch stays best, training stops `patience` later.
    result = fit(tiny_model(), toy_split(32, 0), toy_split(32, 1), TrainConfig(epochs=20, batch_size=16, lr=0.0,
                 patience=3), seed=0, device=CPU)
    assert result.best_epoch == 0
    assert len(result.history) == 4
    assert result.stop_reason.startswith("early_stop")


def test_same_seed_gives_identical_results_and_another_seed_differs():
    def run(seed):
        model = tiny_model()
        r = fit(model, toy_split(64, 0), toy_split(32, 1), TrainConfig(epochs=3, batch_size=8, lr=0.05),
                seed=seed, device=CPU)
        return [h["train_loss"] for h in r.history], predict(model, toy_split(16, 2).x, 8, CPU)

    losses_a, prob_a = run(1)
    losses_b, prob_b = run(1)
    losses_c, _ = run(2)
    assert losses_a == losses_b and np.array_equal(prob_a, prob_b)
    assert losses_a != losses_c


def test_nan_loss_stops_the_run_with_a_clear_reason():
    split = toy_split(16, 0)
    bad = ArraySplit(np.full_like(split.x, np.nan), split.y, split.classes)
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 0"):
        fit(tiny_model(), bad, split, TrainConfig(epochs=2, batch_size=8, lr=0.01), seed=0, device=CPU)


def test_non_finite_validation_outputs_stop_the_run_with_a_clear_reason():
    """Outputs that are not finite (diverged weights after the epoch's last step, whose loss was still finite;
    here NaN validation inputs) stop the cell as a NaN loss does, not later as a metric's complaint."""
    split = toy_split(16, 0)
    bad_val = ArraySplit(np.full_like(split.x, np.nan), split.y, split.classes)
    with pytest.raises(NonFiniteLossError, match="validation outputs became NaN or infinite after epoch 0"):
        fit(tiny_model(), split, bad_val, TrainConfig(epochs=2, batch_size=8, lr=0.01), seed=0, device=CPU)


def test_only_trainable_parameters_are_optimised():
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(model, toy_split(8, 0), toy_split(8, 1), TrainConfig(epochs=1, batch_size=8, lr=0.01), seed=0, device=CPU)


def test_a_small_training_set_is_repeated_up_to_the_minimum_samples_per_epoch():
    seen = []

    class Counting(TinyBackbone):
        def forward(self, x):
            if self.training:
                seen.append(len(x))
            return super().forward(x)

    model = Classifier(Counting(), nn.Linear(12, 2), head_factory=lambda i, n: nn.Linear(i, n))
    fit(model, toy_split(10, 0), toy_split(8, 1), TrainConfig(epochs=2, batch_size=8, lr=0.01,
        min_samples_per_epoch=35), seed=0, device=CPU)
    assert sum(seen) == 2 * 40  # 4 shuffled passes over 10 records per epoch, twice
    seen.clear()
    fit(model, toy_split(10, 0), toy_split(8, 1), TrainConfig(epochs=2, batch_size=8, lr=0.01), seed=0, device=CPU)
    assert sum(seen) == 2 * 10


def test_batches_cover_the_order_once_each_batch_sorted_for_the_memory_map():
    from ecgbench.engine.train import iter_batches

    split = toy_split(10, 0)
    order = np.random.default_rng(0).permutation(10)
    batches = list(iter_batches(split, order, 4, CPU))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    expected = np.concatenate([np.sort(order[i:i + 4]) for i in (0, 4, 8)])
    np.testing.assert_array_equal(torch.cat([x for x, _ in batches]).numpy(), split.x[expected])
