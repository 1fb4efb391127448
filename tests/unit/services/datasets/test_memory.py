"""Streaming really streams: a ~100 MB CSV is inspected with bounded memory (measured in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import generate_wide_csv

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from aimaas.services.datasets.ingest import inspect_dataset

    def rss_mib():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    before = rss_mib()
    start = time.perf_counter()
    result = inspect_dataset(Path(sys.argv[1]), "csv")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": result.num_rows, "growth": peak - before, "seconds": seconds}))
    """
)


def test_100mb_csv_peak_memory(tmp_path):
    path = tmp_path / "wide.csv"
    rows = generate_wide_csv(path, 100 * 1024 * 1024)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["rows"] == rows
    print(report)
    assert report["growth"] < 200, report
