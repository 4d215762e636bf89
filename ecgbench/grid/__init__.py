"""The study grid as a test module that ships with the package: ``pytest --pyargs ecgbench.grid`` runs it from
any folder (a checkout's ``benchmarks/test_grid.py`` re-exports it; ``ecgbench submit`` runs this file)."""
