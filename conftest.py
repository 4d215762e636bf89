"""Root conftest: loads the study plugin in a checkout that is not pip-installed (installed, it is a pytest11
entry point of the same name, and pytest registers it once)."""
pytest_plugins = ["ecgbench.plugin"]
