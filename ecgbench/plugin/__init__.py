"""The pytest plugin of the study, split as pytest-benchmark splits its own.

``hooks`` holds the hooks and fixtures pytest loads (re-exported here: the pytest11 entry point and the root
conftest name this package), ``session`` the per-session state and the leaderboard, ``saved_runs`` the saved
runs and the compare gate, ``tasks`` the parametrization, ``hookspecs`` the hooks a user's conftest may
implement.
"""
from ecgbench.plugin.hooks import (
                                   ecg_pretrain,
                                   ecg_run,
                                   ecg_runner,
                                   ecg_score,
                                   pytest_addhooks,
                                   pytest_addoption,
                                   pytest_configure,
                                   pytest_generate_tests,
                                   pytest_xdist_auto_num_workers,
)

__all__ = ["ecg_pretrain", "ecg_run", "ecg_runner", "ecg_score", "pytest_addhooks", "pytest_addoption",
           "pytest_configure", "pytest_generate_tests", "pytest_xdist_auto_num_workers"]
