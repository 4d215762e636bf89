"""Every option of the CLI and of the pytest plugin says what it does; the top-level help names the command."""
from __future__ import annotations

import argparse

from ecgbench import plugin
from ecgbench.cli import build_parser, main


def _cli_options_without_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _cli_options_without_help(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_cli_option_and_argument_has_help():
    assert _cli_options_without_help(build_parser(), "ecgbench") == []


class _Options:
    """Stands in for pytest's parser and option group: records each option's keywords."""

    def __init__(self) -> None:
        self.added: dict[str, dict] = {}

    def getgroup(self, *args, **kwargs) -> "_Options":
        return self

    def addoption(self, *names: str, **kwargs) -> None:
        self.added["/".join(names)] = kwargs


def test_every_plugin_option_has_help():
    options = _Options()
    plugin.pytest_addoption(options)
    assert len(options.added) > 10 and [name for name, kw in options.added.items() if not kw.get("help")] == []


def test_the_top_level_help_names_the_command_and_no_module(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: ecgbench ") and "``" not in text
    assert not any(module in text for module in ("ecgbench.cli", "ecgbench.results", "__main__"))
