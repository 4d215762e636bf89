import pytest
import torch

from ecgbench.models import MODELS, build_model, register_model

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


@pytest.mark.parametrize("name", ["resnet1d18", "gru"])
def test_replace_head_changes_output_size_and_keeps_backbone(name):
    torch.manual_seed(0)
    model = build_model(name, 5)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    old_head = model.head
    model.replace_head(2)
    assert model.head is not old_head
    assert model.eval()(torch.randn(3, 1000, 12)).shape == (3, 2)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("name", ["resnet1d18", "lstm"])
def test_freezing_really_freezes_the_backbone(name):
    torch.manual_seed(0)
    model = build_model(name, 3)
    model.freeze_backbone()
    model.train()  # a frozen backbone must stay in eval mode: BatchNorm statistics must not move
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = [p.clone() for p in model.head.parameters()]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss = model(torch.randn(4, 1000, 12)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(not p.requires_grad for p in model.backbone.parameters())
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed although the backbone is frozen"
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))


def test_registry_rejects_duplicates_and_names_unknown_models():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet1d18", lambda n: build_model("gru", n))
    with pytest.raises(KeyError, match="unknown model 'nope'.*resnet1d18"):
        build_model("nope", 2)
