import dataclasses
from pathlib import Path

import pytest

from ecgbench.checkpoints import CHECKPOINTS
from ecgbench.data.loaders import FORMATS
from ecgbench.data.registry import DATASETS
from ecgbench.models import MODELS
from ecgbench.runner import CellRunner, RunOptions
from ecgbench.study import get_profile

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def isolated_registries(monkeypatch):
    """Each test sees the registries as they were before it: a dataset, model, format or checkpoint a test
    registers (with ``--ecg-manifest`` through ``main``, say) must not leak into the next test on the same worker."""
    for registry in (DATASETS, MODELS, FORMATS, CHECKPOINTS):
        for attribute in ("_items", "_origins"):
            monkeypatch.setattr(registry, attribute, dict(getattr(registry, attribute)))
        monkeypatch.setattr(registry, "_discovered", registry._discovered)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One synthetic-data cache for the whole test session: each stand-in is generated once."""
    return tmp_path_factory.mktemp("ecg-cache")


@pytest.fixture
def smoke_profile():
    """The smoke profile with few models: tiny data, one epoch."""
    return dataclasses.replace(get_profile("smoke"), models=("resnet1d18", "gru"))


@pytest.fixture
def make_runner(tmp_path, data_cache, smoke_profile):
    def make(results: str = "results", profile=None, **options) -> CellRunner:
        return CellRunner(profile or smoke_profile,
                     RunOptions(results_dir=tmp_path / results, cache_dir=data_cache, **options))
    return make
