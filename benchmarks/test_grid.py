"""The study grid, for ``pytest benchmarks/test_grid.py`` in a checkout. The tests live in the package
(``ecgbench/grid/test_grid.py``) so that an installed wheel has them too: ``pytest --pyargs ecgbench.grid``."""
# pytest collects in this namespace's order: pre-trainings first, as in the package module
from ecgbench.grid.test_grid import test_pretrain  # noqa: F401
from ecgbench.grid.test_grid import test_cell  # noqa: F401
from ecgbench.grid.test_grid import test_transferability  # noqa: F401
