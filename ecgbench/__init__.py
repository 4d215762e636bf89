"""ecgbench: a benchmark of transfer learning for 12-lead ECG diagnosis (after Nguyen & Do, 2024)."""

__version__ = "0.1.0"
