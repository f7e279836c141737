"""environment.yml (conda) and pyproject.toml (pip) install the same packages with the same bounds."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda package name -> PyPI name


def _split(spec: str) -> tuple[str, str]:
    name, bounds = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
    return name.lower().replace("_", "-"), bounds.replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    return dict(_split(s) for s in specs)


def conda_requirements() -> dict[str, str]:
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([^:]+)$", line) or re.match(r"^      - ([^-#][^#]*?)\s*(?:#.*)?$", line)  # or PyPI-only
        if in_deps and m:
            name, bounds = _split(m.group(1))
            deps[CONDA_NAMES.get(name, name)] = bounds
    return deps


def test_conda_and_pip_lists_agree():
    conda = conda_requirements()
    assert conda.pop("python") == ">=3.11" and "pip" in conda.pop("pip", "") + "pip"
    assert conda == pip_requirements()


def test_python_version_bound_matches():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "--editable ." in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    readme = (ROOT / "README.md").read_text()
    runs = [ln for ln in ci if "pytest" in ln]
    assert len(runs) == 1 and runs[0] in readme
