"""pytest setup shared by tests/ and the nbval run over lectures/: quick mode, offline, one kernel at a time."""
import os
from pathlib import Path

import pytest

# Tests and CI never download, and always run the lectures in quick mode (set before any kernel starts).
os.environ["COURSE_OFFLINE"] = "1"
os.environ["COURSE_MODE"] = os.environ.get("COURSE_TEST_MODE", "quick")
os.environ.setdefault("MPLBACKEND", "Agg")
# Hermetic: the embedded digits whatever MNIST caches this machine holds (course_utils.data.SOURCE_ENV).
os.environ["COURSE_DATA_SOURCE"] = "embedded"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the lecture for course_utils.results before nbval starts the notebook's kernel (it inherits os.environ)."""
    if item.path.suffix == ".ipynb":
        os.environ["COURSE_LECTURE"] = item.path.stem


def pytest_configure(config):
    """Temp folders under build/pytest-of-<user>/pytest-N, not the shared /tmp/pytest-of-<user>.

    pytest refuses a /tmp/pytest-of-<user> owned by another uid (a machine where something changed its
    owner makes every tmp_path test error at setup); a folder inside the checkout is ours alone. The root is
    set with PYTEST_DEBUG_TEMPROOT, not --basetemp: pytest wipes a fixed --basetemp when a session starts,
    which deleted the temp files of any other pytest run in the same checkout, while numbered pytest-N
    folders are made and cleaned with locks. `--basetemp` on the command line still wins.
    """
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")
    build = Path(__file__).resolve().parent / "build"
    build.mkdir(exist_ok=True)  # pytest creates its folders below the root, but not the root (a fresh clone)
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(build))
