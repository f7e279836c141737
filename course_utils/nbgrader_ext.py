"""nbgrader preprocessors used by `course grade` / `course feedback` (loaded by nbgrader through its config).

- `GuardedExecute`: nbgrader's Execute that survives hostile notebooks: a cell that times out or kills
  the kernel is recorded as an error and the kernel is restarted so the rest still runs; outputs are
  capped per cell; before every autograded test cell a guard undoes known monkeypatching (builtins,
  torch / numpy / math / grading helpers, IPython input transformers and hooks, sys.stdout and friends),
  and a per-cell canary proves that the test cell ran to its last line.
- `StripHiddenTests`: removes hidden test regions from cells and their lines from tracebacks (feedback).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time


from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from traitlets import Integer, List, Unicode

from nbgrader.plugins import FileNameCollectorPlugin
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

# Runs silently once per kernel start, before any cell: snapshot what tests rely on.
GUARD_SETUP = r'''
def _course_guard_setup():
    import sys, builtins, math, operator, functools
    mods = {}
    for name in ["builtins", "math", "operator", "functools", "numpy", "numpy.testing", "torch", "torch.testing",
                 "torch.nn", "torch.nn.functional", "course_utils", "course_utils.grading"]:
        try:
            __import__(name)
        except Exception:
            continue
        m = sys.modules[name]
        mods[name] = (m, dict(vars(m)))
    classes = []
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None)
    objs = [ip] + ([kernel] if kernel is not None else [])
    for obj in objs:
        for cls in type(obj).__mro__[:-1]:
            classes.append((cls, dict(vars(cls))))
    for modname, clsname in [("torch", "Tensor"), ("torch.nn", "Module"), ("numpy", "ndarray")]:
        m = sys.modules.get(modname)
        c = getattr(m, clsname, None) if m else None
        if isinstance(c, type):
            classes.append((c, dict(vars(c))))
    state = dict(
        mods=mods, classes=classes, objs=[(o, {k: v for k, v in vars(o).items() if callable(v)}) for o in objs],
        user_ns={k: v for k, v in ip.user_ns.items()},
        sys={k: getattr(sys, k) for k in ("stdout", "stderr", "displayhook", "meta_path", "path_hooks")},
        lists={k: list(getattr(sys, k)) for k in ("meta_path", "path_hooks")},
        trace=sys.gettrace(), profile=sys.getprofile(),
        ipy={k: list(getattr(ip, k)) for k in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")},
        events={k: list(v) for k, v in ip.events.callbacks.items()},
    )
    holder = type(sys)("_course_guard")
    holder.state = state
    sys.modules["_course_guard"] = holder
_course_guard_setup()
del _course_guard_setup
_course_guard_report = []
'''

# Runs silently before every autograded test cell: undo patches; report what was found.
GUARD_RESTORE = r'''
def _course_guard_restore():
    import sys
    st = sys.modules["_course_guard"].state
    fixed = []
    VOLATILE = {("builtins", "input"), ("builtins", "raw_input"), ("builtins", "getpass")}
    def user_made(v):
        code = getattr(getattr(v, "__func__", v), "__code__", None)
        return getattr(v, "__module__", None) == "__main__" or not callable(v) and not isinstance(v, type(sys)) \
            or code is not None and ("ipykernel" in code.co_filename or code.co_filename.startswith("<"))
    for name, (m, snap) in st["mods"].items():
        cur = vars(m)
        for k, v in snap.items():
            if cur.get(k, st) is not v and (name, k) not in VOLATILE:
                if user_made(cur.get(k)):
                    fixed.append(f"{name}.{k}")
                setattr(m, k, v)
        for k in [k for k in cur if k not in snap and user_made(cur[k])]:
            delattr(m, k); fixed.append(f"{name}.{k}+")
        sys.modules[name] = m
    for cls, snap in st["classes"]:
        cur = dict(vars(cls))
        for k, v in snap.items():
            if cur.get(k, st) is not v:
                try:
                    setattr(cls, k, v); fixed.append(f"{cls.__name__}.{k}")
                except (TypeError, AttributeError):
                    pass
        for k in [k for k in cur if k not in snap]:
            try:
                delattr(cls, k); fixed.append(f"{cls.__name__}.{k}+")
            except (TypeError, AttributeError):
                pass
    for obj, snap in st["objs"]:
        for k, v in list(vars(obj).items()):
            if callable(getattr(type(obj), k, None)) or callable(snap.get(k)):
                if k not in snap:
                    delattr(obj, k); fixed.append(f"{type(obj).__name__}().{k}")
                elif v is not snap[k] and getattr(v, "__func__", v) is not getattr(snap[k], "__func__", snap[k]):
                    setattr(obj, k, snap[k]); fixed.append(f"{type(obj).__name__}().{k}")
    for k, v in st["sys"].items():
        if getattr(sys, k) is not v:
            setattr(sys, k, v); fixed.append(f"sys.{k}")
    for k, v in st["lists"].items():
        if getattr(sys, k) != v:
            getattr(sys, k)[:] = v; fixed.append(f"sys.{k}[]")
    if sys.gettrace() is not st["trace"] or sys.getprofile() is not st["profile"]:
        sys.settrace(st["trace"]); sys.setprofile(st["profile"]); fixed.append("sys.settrace")
    ip = get_ipython()
    for k, v in st["ipy"].items():
        if getattr(ip, k) != v:
            getattr(ip, k)[:] = v; fixed.append(f"ipython.{k}")
    for k, v in st["events"].items():
        if ip.events.callbacks.get(k) != v:
            ip.events.callbacks[k] = list(v); fixed.append(f"ipython.events.{k}")
    import builtins
    ns = ip.user_ns
    ns["__builtins__"] = builtins
    for k in [k for k in ns if not k.startswith("_") and k in vars(builtins)]:
        if ns[k] is not st["user_ns"].get(k, st):
            if k in st["user_ns"]:
                ns[k] = st["user_ns"][k]
            else:
                del ns[k]
            fixed.append(f"global {k} shadowed a builtin")
    for k, modname in (("torch", "torch"), ("np", "numpy"), ("numpy", "numpy"), ("math", "math"),
                       ("F", "torch.nn.functional"), ("nn", "torch.nn")):
        if k in ns and modname in st["mods"] and ns[k] is not st["mods"][modname][0]:
            ns[k] = st["mods"][modname][0]; fixed.append(f"global {k}")
    return fixed
_course_guard_report = _course_guard_restore()
del _course_guard_restore
'''


class GuardedExecute(Execute):
    """Execute that records timeouts / kernel deaths per cell, restarts the kernel, caps outputs and guards tests."""

    max_output_chars = Integer(200_000, help="Characters of output kept per cell; the rest is dropped.").tag(config=True)
    report_file = Unicode("", help="JSON lines file that receives one event per incident.").tag(config=True)
    workdir = Unicode("", help="Working directory of the kernel (instead of the notebook's folder).").tag(config=True)

    def _event(self, **kw) -> None:
        """Append an incident to the report file."""
        if self.report_file:
            with open(self.report_file, "a") as f:
                f.write(json.dumps(kw) + "\n")

    def preprocess(self, nb, resources=None, km=None):
        """Execute the notebook in the configured working directory."""
        if self.workdir:
            resources = dict(resources or {})
            resources["metadata"] = dict(resources.get("metadata") or {}, path=self.workdir)
        self._guard_ok, self._chars, self._truncated = False, {}, set()
        return super().preprocess(nb, resources, km)

    def _silent(self, code: str) -> dict | None:
        """Run code silently in the kernel and return the execute reply (None on failure)."""
        try:
            # Run as a user expression: that bypasses run_cell and input transformers, which a student may patch.
            run = f"exec(compile({code!r}, '<course-guard>', 'exec'), globals())"
            msg_id = self.kc.execute("", silent=True, store_history=False,
                                     user_expressions={"a": run, "r": "_course_guard_report"})
            deadline = time.monotonic() + max(self.timeout or 0, self.startup_timeout)
            while time.monotonic() < deadline:
                msg = run_sync(self.kc.shell_channel.get_msg)(timeout=max(0.1, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg
        except Exception as e:  # noqa: BLE001 - a broken kernel is handled by the caller
            self.log.warning("guard code failed: %s", e)
        return None

    def _restart(self, index: int, why: str) -> None:
        """Restart a dead or stuck kernel so that the following cells still run."""
        self._event(cell=index, kind=why)
        run_sync(self.km.restart_kernel)(now=True)
        run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        self._guard_ok = False

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most max_output_chars characters of output per cell (counted as messages arrive)."""
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._chars[cell_index] = self._chars.get(cell_index, 0) + size
        if self._chars[cell_index] > self.max_output_chars:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                self._event(cell=cell_index, kind="output truncated")
                outs.append(NotebookNode(output_type="stream", name="stdout",
                                         text=f"\n[output truncated: more than {self.max_output_chars} characters]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def preprocess_cell(self, cell, resources, index):
        """Run one cell; guard test cells; turn timeouts and kernel deaths into cell errors."""
        if cell.cell_type != "code":
            return cell, resources
        grade_cell = cell.metadata.get("nbgrader", {}).get("grade", False)
        if not self._guard_ok:
            reply = (self._silent(GUARD_SETUP) or {}).get("content", {})
            self._guard_ok = reply.get("user_expressions", {}).get("a", {}).get("status") == "ok"
        token = None
        original = cell.source
        if grade_cell:
            reply = self._silent(GUARD_RESTORE)
            expr = (reply or {}).get("content", {}).get("user_expressions", {})
            found = expr.get("r", {}).get("data", {}).get("text/plain", "")
            if expr.get("a", {}).get("status") != "ok":
                self._event(cell=index, kind="guard failed")
            elif found and found != "[]":
                self._event(cell=index, kind="patches undone", detail=found[:500])
            token = "course-canary-" + secrets.token_hex(8)
            cell.source = original + f"\n{token!r}"
        try:
            try:
                cell = self.execute_cell(cell, index, store_history=True)
            finally:
                cell.source = original
        except CellTimeoutError:
            cell.outputs.append(_error("CellTimeoutError", f"the cell did not finish within {self.timeout} s "
                                       "and ignored the interrupt; the kernel was restarted"))
            self._restart(index, "timeout (kernel restarted)")
        except DeadKernelError:
            cell.outputs.append(_error("DeadKernelError", "the kernel died while running this cell "
                                       "(crash, os._exit or memory); it was restarted"))
            self._restart(index, "kernel died")
        else:
            if any(o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                self._event(cell=index, kind="timeout (interrupted)")
            if any(o.output_type == "error" and o.get("ename") == "MemoryError" for o in cell.outputs):
                self._event(cell=index, kind="memory limit")
        if token is not None:
            ran = [o for o in cell.outputs if o.output_type == "execute_result"
                   and token in o.get("data", {}).get("text/plain", "")]
            cell.outputs = [o for o in cell.outputs if not any(o is r for r in ran)]
            if not ran and not any(o.output_type == "error" for o in cell.outputs):
                cell.outputs.append(_error("AutograderIntegrityError", "this test cell did not run to its end"))
                self._event(cell=index, kind="test cell did not complete")
        return cell, resources


def _error(ename: str, evalue: str) -> NotebookNode:
    """An error output as nbclient records it."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LINE_PREFIX = re.compile(r"^\s*(?:-+>\s*)?\d+\s")


class StripHiddenTests(NbGraderPreprocessor):
    """Remove hidden test regions from cell sources and their lines from error tracebacks."""

    begin = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        """Strip the hidden region and every traceback / output line that quotes it."""
        hidden, kept, inside = set(), [], False
        for line in cell.source.split("\n"):
            if self.begin in line:
                inside = True
                hidden.add(line.strip())
            elif self.end in line:
                inside = False
                hidden.add(line.strip())
            elif inside:
                if line.strip():
                    hidden.add(line.strip())
            else:
                kept.append(line)
        if not hidden and not inside:
            return cell, resources
        cell.source = "\n".join(kept).rstrip() + "\n# (hidden tests are not shown)"
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [self._scrub(t, hidden) for t in out.traceback]
                out.evalue = self._scrub(out.evalue, hidden)
            elif out.output_type == "stream":
                out.text = self._scrub(out.text, hidden)
        return cell, resources

    @staticmethod
    def _scrub(text: str, hidden: set[str]) -> str:
        """Replace lines that quote hidden test code."""
        lines = []
        for line in text.split("\n"):
            plain = LINE_PREFIX.sub("", ANSI.sub("", line)).strip()
            if plain and (plain in hidden or any(h in plain for h in hidden if len(h) > 12)):
                if not lines or lines[-1] != "    [hidden test line]":
                    lines.append("    [hidden test line]")
            else:
                lines.append(line)
        return "\n".join(lines)


class StudentFileCollector(FileNameCollectorPlugin):
    """zip_collect plugin: files named `<student>[_anything].ipynb`; the notebook is the assignment's own."""

    notebooks = List(Unicode(), help="Released notebook names of the assignment (without .ipynb).").tag(config=True)

    def collect(self, submitted_file: str) -> dict | None:
        """Student id from the file name; file id = the released notebook named in it, or the only one."""
        if os.path.splitext(submitted_file)[1] not in self.valid_ext:
            return None
        m = re.match(self.named_regexp, os.path.basename(submitted_file))
        if not m:
            self.log.warning("file name does not match %r: %s", self.named_regexp, submitted_file)
            return None
        info = m.groupdict()
        if not info.get("file_id"):
            named = [n for n in self.notebooks if n in os.path.basename(submitted_file)]
            info["file_id"] = (named or self.notebooks or ["notebook"])[0] + ".ipynb"
        return info
