"""The batch example agent (examples/batch/main.py), unchanged, as a test agent."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "batch" / "main.py"), run_name="__main__")
