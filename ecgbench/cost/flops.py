"""FLOPs per sample of a forward (inference) or forward+backward (training) pass.

Why here, under the cost model: FLOPs x samples is what every task of the grid costs (``ecgbench.cost``), and
the performance report divides FLOPs per sample times samples/s by the machine's matmul ceiling to tell
whether our code or the arithmetic limits a model. ``torch.utils.flop_counter`` counts matmuls and
convolutions, but the fused CPU LSTM kernel is invisible to it (it reports only the head), so every recurrent
module is counted analytically instead, the same way the counter counts a matmul (2 FLOPs per multiply-add;
gate non-linearities and other element-wise work are not counted, as for every model).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_flops(rnn: nn.RNNBase, seq_len: int, backward: bool) -> int:
    """Matmul FLOPs of one sample through ``rnn``: input and hidden projections of every step and direction.

    Backward adds the weight gradients (as much as the forward), the gradient into the previous hidden
    state, and the gradient into the layer input for every layer but the first (the model's input needs none).
    """
    if rnn.proj_size:
        raise NotImplementedError("recurrent_flops does not count projected LSTMs")
    gates_h = _GATES[rnn.mode.split("_")[0]] * rnn.hidden_size
    directions = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        n_in = rnn.input_size if layer == 0 else rnn.hidden_size * directions
        forward = 2 * seq_len * gates_h * (n_in + rnn.hidden_size)
        layer_flops = forward
        if backward:
            layer_flops += forward + 2 * seq_len * gates_h * rnn.hidden_size
            if layer > 0:
                layer_flops += 2 * seq_len * gates_h * n_in
        total += directions * layer_flops
    return total


def _counted(model: nn.Module, x: torch.Tensor, backward: bool) -> tuple[int, dict[str, int]]:
    """Total FLOPs the counter saw, and the FLOPs it attributed to each module (by qualified name)."""
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.float().sum().backward()
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def flops_per_sample(model: nn.Module, *, backward: bool, batch: int = 2, seq_len: int = 1000,
                     leads: int = 12) -> float:
    """FLOPs per sample: forward only (``backward=False``) or forward+backward, recurrent modules analytic.

    The model is run once on a small random batch in training mode (batch-independent: FLOPs scale
    linearly with the batch); its gradients are cleared again afterwards.
    """
    x = torch.randn(batch, seq_len, leads, dtype=next(model.parameters()).dtype,
                    device=next(model.parameters()).device)
    was_training = model.training
    model.train(backward)
    try:
        if backward:
            total, per_module = _counted(model, x, backward=True)
        else:
            with torch.no_grad():
                total, per_module = _counted(model, x, backward=False)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    root = type(model).__name__
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            total -= per_module.get(f"{root}.{name}", 0)
            total += batch * recurrent_flops(module, seq_len, backward)
    return total / batch
