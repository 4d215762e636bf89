#!/usr/bin/env bash
# One command from a fresh clone (Python >= 3.11 and nothing else):
#   bash scripts/quickstart.sh main   set up .venv, run the default study on synthetic ECGs, write reports/
#   bash scripts/quickstart.sh test   set up .venv, run the test suite
# Set ECGBENCH_PYTHON to choose the interpreter; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:-}"; shift || true
python="${ECGBENCH_PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # torch first, pinned: this workplace's package mirror serves 2.13.0 as the CPU build; elsewhere set
  # ECGBENCH_TORCH_INDEX=https://download.pytorch.org/whl/cpu to avoid the multi-GB CUDA build.
  .venv/bin/python -m pip install -q torch==2.13.0 ${ECGBENCH_TORCH_INDEX:+--index-url "$ECGBENCH_TORCH_INDEX"}
fi
.venv/bin/python -m pip install -q -e .

case "$task" in
  main) exec .venv/bin/python -m pytest benchmarks/test_grid.py -n 2 -q -p no:benchmark "$@" ;;
  test)
    .venv/bin/python -m pip install -q -e ".[dev]"
    # The third-party package of tests/test_own_data.py and tests/test_walkthrough_checkpoint.py (models, two
    # datasets and a pre-trained checkpoint, by entry points only) goes into a throw-away folder on the tests'
    # path alone: .venv's `ecgbench models` never lists its demo models.
    .venv/bin/python -m pip uninstall -q -y ecgbench-demo-ext 2>/dev/null || true  # an older script put it in .venv
    demo="$(mktemp -d)"; trap 'rm -rf "$demo"' EXIT
    .venv/bin/python -m pip install -q --no-deps --target "$demo" ./tests/thirdparty
    .venv/bin/lint-imports  # the layer contracts of pyproject.toml: a broken one fails the tests
    .venv/bin/ruff check .  # style and import order, configured in pyproject.toml
    PYTHONPATH="$demo${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -m pytest tests -n 2 -q "$@" ;;
  *) echo "usage: bash scripts/quickstart.sh main|test [pytest args]" >&2; exit 2 ;;
esac
