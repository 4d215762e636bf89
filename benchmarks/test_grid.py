"""The study grid, for ``pytest benchmarks/test_grid.py`` in a checkout. The tests live in the package
(``ecgbench/grid/test_grid.py``) so that an installed wheel has them too: ``pytest --pyargs ecgbench.grid``."""
from ecgbench.grid.test_grid import test_cell, test_pretrain  # noqa: F401  (collected here by pytest)
