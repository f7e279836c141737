"""pytest setup shared by tests/ and the nbval run over lectures/: quick mode, offline, one kernel at a time."""
import os

# Tests and CI never download, and always run the lectures in quick mode (set before any kernel starts).
os.environ["COURSE_OFFLINE"] = "1"
os.environ["COURSE_MODE"] = os.environ.get("COURSE_TEST_MODE", "quick")
os.environ.setdefault("MPLBACKEND", "Agg")
