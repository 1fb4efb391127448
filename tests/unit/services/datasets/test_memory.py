"""Streaming really streams: a ~100 MB CSV is inspected with bounded memory (measured in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import generate_wide_csv

# Peak RSS is read from VmHWM, not from getrusage(): after exec, ru_maxrss still carries the high-water mark of
# the process that forked the child (here a pytest worker of a few hundred MB), VmHWM belongs to the child alone.
_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from aimaas.services.datasets.ingest import inspect_dataset

    def status(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024

    try:  # reset the high-water mark to the current RSS (Linux >= 4.0), so imports do not count
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    before = status("VmRSS")
    start = time.perf_counter()
    result = inspect_dataset(Path(sys.argv[1]), "csv")
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": result.num_rows, "growth": status("VmHWM") - before, "seconds": seconds}))
    """
)


def test_100mb_csv_peak_memory(tmp_path):
    path = tmp_path / "wide.csv"
    rows = generate_wide_csv(path, 100 * 1024 * 1024)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)  # shown with -s: rows, peak RSS growth in MiB, seconds
    assert report["rows"] == rows
    assert report["growth"] < 200, report
