"""The run's facts for ``ecgbench perf``: torch, threads, device names and the load average before and after,
in pytest-benchmark's ``machine_info["ecgbench"]`` (``ecgbench.perf.readings.run_facts``)."""
import time

from ecgbench.perf.machine import load_average
from ecgbench.perf.readings import run_facts

STARTED, LOAD_START = time.time(), load_average()


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["ecgbench"] = run_facts(STARTED, LOAD_START)
