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


class _Backbone(nn.Module):
    """8 features from a [batch, 1000, 12] record: a user's model in miniature."""

    out_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(12, 8, 9, stride=4)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).mean(-1)


def _scratch_registry(monkeypatch):
    from ecgbench.models import MODELS as registered
    from ecgbench.registry import Registry

    fresh = Registry("model")
    for name in registered.names():
        fresh.register(name, registered.get(name), registered.origin(name))
    monkeypatch.setattr("ecgbench.models.MODELS", fresh)
    monkeypatch.setattr("ecgbench.models._DRY_RUN_DONE", set())
    return fresh


@pytest.mark.parametrize("name", ["my/net", "../net", "", "net one", ".hidden", "net\\x"])
def test_a_model_name_unsafe_in_a_file_name_is_refused_at_registration(monkeypatch, name):
    registry = _scratch_registry(monkeypatch)
    with pytest.raises(ValueError, match=r"model name .*: use letters, digits, '_', '.' and '-' only"):
        register_model(name, lambda n: build_model("gru", n), "rnn")
    assert name not in registry.names()


@pytest.mark.parametrize("factory, message", [
    (lambda n: Classifier(_Backbone(), nn.Linear(8, 3), nn.Linear),
     r"model 'user': built for 5 classes, its last layer 'head' has 3 outputs \(does the factory use its n_classes"),
    (lambda n: Classifier(_Backbone(), nn.Sequential(OrderedDict(fc1=nn.Linear(8, 8), fc2=nn.Linear(8, n))),
                          nn.Linear, last_layer="fc3"),
     r"model 'user': its factory failed for n_classes=5: ValueError: last_layer 'fc3' names no module of the head "
     r"\(its modules: fc1, fc2\)"),
    (lambda n: Classifier(_Backbone(), nn.Sequential(nn.Linear(8, n), nn.Unflatten(1, (1, n))), nn.Linear,
                          last_layer="0"),
     r"model 'user': built for 5 classes, it outputs shape \[2, 1, 5\] on a batch of 2, expected \[2, 5\]"),
    (lambda n: Classifier(_Backbone(), nn.Linear(9, n), nn.Linear),
     r"model 'user': a forward pass on a \[2, 1000, 12\] input \(batch, samples, leads\) fails: RuntimeError"),
    (lambda n: nn.Linear(12, n), r"model 'user': its factory must return an ecgbench.models.Classifier, got Linear"),
])
def test_a_broken_user_model_fails_by_name_at_its_first_build(monkeypatch, factory, message):
    _scratch_registry(monkeypatch)
    register_model("user", factory, "cnn")
    with pytest.raises(ValueError, match=message):
        build_model("user", 5)


def test_a_factory_that_ignores_n_classes_fails_at_every_later_build_too(monkeypatch):
    _scratch_registry(monkeypatch)
    register_model("fixed3", lambda n: Classifier(_Backbone(), nn.Linear(8, 3), nn.Linear), "cnn")
    assert build_model("fixed3", 3).last_linear.out_features == 3  # right by chance: the dry run passes
    with pytest.raises(ValueError, match="model 'fixed3': built for 4 classes, its last layer 'head' has 3 outputs"):
        build_model("fixed3", 4)


def test_the_build_check_leaves_the_initialisation_and_the_mode_as_they_were(monkeypatch):
    monkeypatch.setattr("ecgbench.models._DRY_RUN_DONE", set())  # the first build below runs the dry forward
    torch.manual_seed(0)
    first = build_model("resnet1d18", 5)
    torch.manual_seed(0)
    second = build_model("resnet1d18", 5)
    assert first.training and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                                      second.state_dict().values()))
    torch.manual_seed(0)
    unchecked = MODELS.get("resnet1d18").factory(5)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), unchecked.state_dict().values()))
