"""conformance/catalogue.yaml is current: what tools/gencatalogue.py writes from the cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_catalogue_matches_the_cases():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gencatalogue.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
