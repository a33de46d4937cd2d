#!/usr/bin/env python3
"""Refresh tests/module_durations.json from a JUnit report of a ``make test`` pass.

    MARKET_TEST_DB=sqlite .venv/bin/python -m pytest -q -m "not slow" -n 2 --dist loadscope \\
        --junitxml=/tmp/suite.xml
    python3 .ci/module_durations.py /tmp/suite.xml

tests/conftest.py runs the longest modules first, so that the two xdist workers do not end the
run with one long module on one worker while the other idles.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Modules shorter than this keep their collection order (among themselves) at the end.
MIN_SECONDS = 5.0


def main(report: str) -> None:
    seconds: Counter[str] = Counter()
    for case in ET.parse(report).iter("testcase"):
        parts = (case.get("classname") or "").split(".")
        for end in range(len(parts), 0, -1):
            module = "/".join(parts[:end]) + ".py"
            if (ROOT / module).is_file():
                seconds[module] += float(case.get("time") or 0)
                break
    kept = {m: round(s, 1) for m, s in seconds.most_common() if s >= MIN_SECONDS}
    (ROOT / "tests" / "module_durations.json").write_text(json.dumps(kept, indent=0) + "\n")
    print(f"{len(kept)} modules of {MIN_SECONDS:g} s or more")


if __name__ == "__main__":
    main(sys.argv[1])
