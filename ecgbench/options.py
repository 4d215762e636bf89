"""The study's options, defined once for pytest (``--ecg-profile``...) and the CLI (``--profile``...), and the one
function that turns them into a ``Profile`` and ``RunOptions`` with every check, so that every entry point
refuses the same bad input (as pytest-benchmark's ``add_display_options(addoption, prefix)`` serves its plugin
and its CLI)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ecgbench.data.prepare import default_cache_dir
from ecgbench.data.root import DataRootError, datasets_in
from ecgbench.runner import RunOptions
from ecgbench.study import DEFAULT_PROFILE, Profile, default_results_dir, get_profile

AddOption = Callable[..., Any]  # a pytest option group's ``addoption`` or argparse's ``add_argument``
GetOption = Callable[[str], Any]  # the value of an option by its unprefixed name ("profile", "data", ...)


class OptionError(ValueError):
    """A study option that cannot run; the message names the option as the user typed it."""


def add_profile_options(addoption: AddOption, prefix: str, seeds: bool = True) -> None:
    """``PREFIXprofile``, ``PREFIXprofiles`` and (with ``seeds``) ``PREFIXseeds``."""
    addoption(f"{prefix}profile", default=DEFAULT_PROFILE, help="profile of profiles.toml (default: %(default)s)")
    addoption(f"{prefix}profiles", type=Path, default=None, metavar="FILE",
              help="a TOML file of your own profiles instead of the packaged profiles.toml")
    if seeds:
        addoption(f"{prefix}seeds", type=int, default=None, help="number of seeds (default: the profile's)")


def add_run_options(addoption: AddOption, prefix: str) -> None:
    """``PREFIXresults``, ``PREFIXdata``, ``PREFIXcache`` and ``PREFIXdevice``: where a study's files live and runs."""
    addoption(f"{prefix}results", type=Path, default=None,
              help="results directory (default: reports/results, or reports/<profile>/results)")
    addoption(f"{prefix}data", type=Path, default=None, help="folder with one sub-folder per real dataset")
    addoption(f"{prefix}cache", type=Path, default=None,
              help="cache of generated/prepared data (default: $ECGBENCH_CACHE or ~/.cache/ecgbench)")
    addoption(f"{prefix}device", default=None, help="torch device (default: cuda when present, else cpu)")


def study_profile(get: GetOption, prefix: str) -> Profile:
    """The profile the options name, with their seed count."""
    seeds = get("seeds")
    if seeds is not None and seeds < 1:
        raise OptionError(f"{prefix}seeds must be at least 1")
    try:
        profile = get_profile(get("profile"), get("profiles"))
    except (KeyError, ValueError, OSError) as e:
        raise OptionError(e.args[0] if isinstance(e, KeyError) and e.args else str(e)) from None
    return profile.with_seeds(seeds) if seeds is not None else profile


def study_results_dir(get: GetOption, profile: Profile, root: Path) -> Path:
    """The results option, else the profile's default folder under ``root``."""
    return Path(get("results") or default_results_dir(root, profile.name)).resolve()


def build_study(get: GetOption, prefix: str, root: Path, *, rerun: str = "none", keep_stale: bool = False,
                fallback_device: str | None = None) -> tuple[Profile, RunOptions]:
    """The profile and run options of a command line, refused (``OptionError``) before anything runs when the
    profile, the seeds, the data root, a folder or the device cannot be used: never a silent fall-back (a
    mistyped data root would otherwise run on the synthetic stand-ins)."""
    profile = study_profile(get, prefix)
    root_option = get("data")
    if root_option is not None:
        try:
            datasets_in(root_option, (*profile.upstreams, *profile.downstreams))
        except DataRootError as e:
            raise OptionError(f"{prefix}data {e}") from None
    for name in ("results", "cache"):
        path = get(name)
        if path is not None and path.exists() and not path.is_dir():
            raise OptionError(f"{prefix}{name} {path}: is a file, not a folder")
    device = get("device")
    if device is not None:
        _check_device(device, prefix)
    options = RunOptions(results_dir=study_results_dir(get, profile, root),
                         cache_dir=(get("cache") or default_cache_dir()).resolve(), data_root=root_option,
                         device=device or fallback_device, rerun=rerun, keep_stale=keep_stale)
    return profile, options


def _check_device(name: str, prefix: str) -> None:
    """A device this torch cannot use is refused once, not as a failure repeated in every cell."""
    import torch

    try:
        torch.empty(1, device=name)
    except (RuntimeError, AssertionError) as e:  # torch raises AssertionError for CUDA in a CPU-only build
        raise OptionError(f"{prefix}device {name}: this torch cannot use it ({str(e).splitlines()[0]}); "
                          f"devices here: cpu{', cuda' if torch.cuda.is_available() else ''}") from None
