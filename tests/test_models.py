from collections import OrderedDict

import pytest
import torch
from torch import nn

from ecgbench.models import MODELS, Classifier, build_model, register_model
from ecgbench.models.rnn import RNNBackbone
from ecgbench.transfer.forward import classifier_forward, source_outputs

# Parameter counts for 5 classes quoted for the paper's architectures.
EXPECTED_MILLIONS = {"resnet1d18": 4.11, "resnet1d50": 17.0, "resnet1d101": 29.3,
                     "lstm": 0.55, "bilstm": 1.09, "gru": 0.53}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_holds_the_six_models():
    assert set(MODELS.names()) >= set(EXPECTED_MILLIONS)


@pytest.mark.parametrize("name", sorted(EXPECTED_MILLIONS))
def test_parameter_count_matches_the_paper(name):
    assert n_params(build_model(name, 5)) / 1e6 == pytest.approx(EXPECTED_MILLIONS[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(EXPECTED_MILLIONS))
def test_forward_maps_batch_of_ecgs_to_class_logits(name):
    model = build_model(name, 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1000, 12))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name, policy, new_part", [
    ("resnet1d18", "last_layer", "head.fc2"), ("resnet1d50", "last_layer", "head.fc2"),
    ("resnet1d18", "head", "head"), ("gru", "last_layer", "head"), ("lstm", "head", "head")])
def test_a_head_policy_recreates_its_part_and_keeps_every_other_tensor(name, policy, new_part):
    torch.manual_seed(0)
    model = build_model(name, 5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.new_part_name(policy) == new_part
    fresh = model.reset_for_transfer(2, policy)
    assert model.get_submodule(new_part) is fresh
    assert model.eval()(torch.randn(3, 1000, 12)).shape == (3, 2)
    kept = {k for k, v in model.state_dict().items() if not k.startswith(new_part + ".")}
    assert kept and all(torch.equal(model.state_dict()[k], before[k]) for k in kept)


def test_the_resnet_head_is_the_papers_fc1_relu_fc2_and_fc2_is_its_last_layer():
    model = build_model("resnet1d50", 5)
    assert (model.head.fc1.in_features, model.head.fc1.out_features) == (2048, 512)
    assert (model.head.fc2.in_features, model.head.fc2.out_features) == (512, 5)
    x = torch.randn(2, 1000, 12).numpy()
    assert source_outputs(classifier_forward(model), x)[1].shape == (2, 512)  # what fc2 reads
    assert source_outputs(classifier_forward(build_model("lstm", 5)), x)[1].shape == (2, 100_000)


@pytest.mark.parametrize("name", ["resnet1d18", "lstm"])
def test_freezing_all_but_the_last_layer_really_freezes_the_rest(name):
    torch.manual_seed(0)
    model = build_model(name, 3)
    trainable = model.new_part_name("last_layer")
    model.freeze_all_but(trainable)
    model.train()  # the frozen part must stay in eval mode: BatchNorm statistics must not move
    before = {k: v.clone() for k, v in model.state_dict().items()}
    last_before = [p.clone() for p in model.get_submodule(trainable).parameters()]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss = model(torch.randn(4, 1000, 12)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    frozen = {k for k in before if not k.startswith(trainable + ".")}
    assert frozen and all(torch.equal(model.state_dict()[k], before[k]) for k in frozen)
    assert all(not m.training for n, m in model.named_modules() if n and not n.startswith(trainable))
    assert any(not torch.equal(a, b) for a, b in zip(last_before, model.get_submodule(trainable).parameters()))


def test_a_model_whose_last_layer_is_not_linear_or_an_unknown_policy_is_refused():
    head = nn.Sequential(OrderedDict(fc=nn.Linear(100_000, 2), act=nn.Sigmoid()))
    with pytest.raises(TypeError, match="'head.act' must be an nn.Linear"):
        Classifier(RNNBackbone(nn.GRU, False), head, nn.Linear, last_layer="act")
    with pytest.raises(ValueError, match="unknown head policy 'all'"):
        build_model("gru", 2).new_part_name("all")


def test_registry_rejects_duplicates_and_names_unknown_models():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet1d18", lambda n: build_model("gru", n), "rnn")
    with pytest.raises(KeyError, match="unknown model 'nope'.*resnet1d18"):
        build_model("nope", 2)
