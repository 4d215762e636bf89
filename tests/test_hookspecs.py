"""The plugin's hookspecs: a conftest adds a field to each stored record's environment and a leaderboard section."""
from pathlib import Path

from ecgbench.results.store import load_records

GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"
ONE_CELL = "ptb and not ptbxl and gru and f0.25 and scratch"  # smoke, one seed: ptb-gru-f0.25-scratch-s0
CONFTEST = '''
def pytest_ecgbench_update_record(record, cell):
    record["environment"]["lab"] = f"bench-7 ran {cell.key}"


def pytest_ecgbench_leaderboard_sections(records, score_records):
    return f"## Lab notes\\n\\n{len(records)} records, {len(score_records)} score records\\n"
'''


def test_a_conftest_adds_a_record_field_and_a_leaderboard_section(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    pytester.makeconftest(CONFTEST)
    results = pytester.path / "out" / "results"
    result = pytester.runpytest("-k", ONE_CELL, "--ecg-profile", "smoke", "--ecg-seeds", "1", "--ecg-results",
                                str(results), "--ecg-cache", str(data_cache), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [record] = load_records(results, "smoke").records  # still a valid record of its schema
    assert record["environment"]["lab"] == "bench-7 ran ptb-gru-f0.25-scratch-s0"
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert "## Lab notes\n\n1 records, 0 score records" in leaderboard
    assert leaderboard.index("## Lab notes") > leaderboard.index("## Downstream: ptb")

