"""Drive one student's kernel from the grader's process: run cells, ask probes, survive what it does.

The kernel is started from a kernelspec (the sandboxed one when grading, a plain one when an author checks
cases). Everything read back is either a cell's outputs (kept for the autograded notebook, capped) or one
probe answer, decoded by `wire` into plain data. A cell or a probe that runs past its timeout is
interrupted; a kernel that ignores the interrupt or dies is restarted by `Kernel.restart`.
"""
from __future__ import annotations

import json
import queue
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .cases import Answer
from .probe import ANSWER_MIME

MAX_OUTPUT_CHARS = 200_000       # characters of output kept per cell
INTERRUPT_GRACE = 5.0            # seconds a kernel gets to honour an interrupt before it is restarted


@dataclass
class Run:
    """What one cell did: its outputs (nbformat dicts) and how it ended."""

    outputs: list[dict] = field(default_factory=list)
    status: str = "ok"           # ok | error | timeout | died
    ename: str = ""
    evalue: str = ""
    execution_count: int | None = None
    answers: list[str] = field(default_factory=list)   # raw ANSWER_MIME payloads displayed by the cell


class Kernel:
    """A started kernel and a blocking client, with timeouts and restarts."""

    def __init__(self, kernel_name: str = "python3", cwd: str | None = None, kernel_spec_manager: Any = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 60.0):
        from jupyter_client import KernelManager

        kwargs = {"kernel_name": kernel_name}
        if kernel_spec_manager is not None:
            kwargs["kernel_spec_manager"] = kernel_spec_manager
        self.km = KernelManager(**kwargs)
        self.cwd, self.env, self.startup_timeout = cwd, env, startup_timeout
        self.kc = None
        self.restarts = 0

    def start(self) -> None:
        """Start the kernel and wait until it answers."""
        kw: dict[str, Any] = {}
        if self.cwd:
            kw["cwd"] = self.cwd
        if self.env is not None:
            kw["env"] = self.env
        self.km.start_kernel(**kw)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=self.startup_timeout)

    def restart(self) -> None:
        """Kill the kernel and start a fresh one (the caller re-runs what it needs)."""
        self.restarts += 1
        self.shutdown()
        self.start()

    def shutdown(self) -> None:
        """Stop channels and kill the kernel (never waits on the student's code)."""
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already dead is fine
            pass

    def alive(self) -> bool:
        """True while the kernel process runs."""
        return self.km.is_alive()

    def run(self, code: str, timeout: float, max_chars: int = MAX_OUTPUT_CHARS) -> Run:
        """Execute code; collect outputs until the kernel is idle, the timeout passes, or it dies."""
        run = Run()
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
        deadline, chars, interrupted = time.monotonic() + timeout, 0, False
        while True:
            if not self.alive():
                run.status = "died"
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    run.status = "timeout"
                    self.restart()
                    return run
                self.km.interrupt_kernel()
                interrupted, deadline = True, time.monotonic() + INTERRUPT_GRACE
                run.status = "timeout"
                continue
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "execute_input":
                run.execution_count = content.get("execution_count")
            elif kind == "error":
                if run.status != "timeout":
                    run.status = "error"
                run.ename, run.evalue = str(content.get("ename", ""))[:200], str(content.get("evalue", ""))[:2000]
                run.outputs.append({"output_type": "error", "ename": run.ename, "evalue": run.evalue,
                                    "traceback": [str(t)[:2000] for t in content.get("traceback", [])[:50]]})
            elif kind in ("stream", "display_data", "execute_result"):
                data = content.get("data", {}) if kind != "stream" else {}
                if isinstance(data, dict) and ANSWER_MIME in data:
                    run.answers.append(data[ANSWER_MIME])
                    continue
                chars = _keep(run.outputs, kind, content, chars, max_chars)
        if interrupted and run.status != "timeout":
            run.status = "timeout"
        return run

    def ask(self, request: dict, timeout: float) -> Answer:
        """Send one probe request; return the decoded answer (ok=False with a reason on any failure)."""
        nonce = secrets.token_hex(8)
        text = json.dumps({**request, "nonce": nonce}, separators=(",", ":"))
        code = f"__import__('course_utils.grader.probe', fromlist=['serve']).serve({text!r})"
        run = self.run(code, timeout, max_chars=20_000)
        if run.status in ("timeout", "died"):
            why = f"did not finish within {timeout:g} s" if run.status == "timeout" else "the kernel died"
            return Answer(False, error="Timeout" if run.status == "timeout" else "KernelDied", message=why)
        mine = []
        for payload in run.answers:
            try:
                raw = json.loads(payload) if isinstance(payload, str) and len(payload) <= wire.MAX_TEXT else None
            except ValueError:
                raw = None
            if isinstance(raw, dict) and raw.get("nonce") == nonce:
                mine.append(raw)
        if len(mine) != 1:
            reason = "no answer came back" if not mine else f"{len(mine)} answers came back for one question"
            if run.status == "error":
                reason += f" ({run.ename}: {run.evalue[:200]})"
            return Answer(False, error="ProtocolError", message=reason)
        try:
            return Answer.from_wire(mine[0])
        except (wire.WireError, TypeError, ValueError) as e:
            return Answer(False, error="WireError", message=f"the answer could not be read: {e}")


def _keep(outputs: list[dict], kind: str, content: dict, chars: int, max_chars: int) -> int:
    """Append one output in nbformat shape, truncating once the cell's character budget is spent."""
    if chars >= max_chars:
        return chars
    if kind == "stream":
        text = str(content.get("text", ""))[: max_chars - chars]
        name = "stderr" if content.get("name") == "stderr" else "stdout"
        if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == name:
            outputs[-1]["text"] += text
        else:
            outputs.append({"output_type": "stream", "name": name, "text": text})
        chars += len(text)
    else:
        data = content.get("data", {})
        data = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (str, list, dict))} \
            if isinstance(data, dict) else {}
        size = len(json.dumps(data))
        if chars + size > max_chars:
            data = {"text/plain": "[output too large, not kept]"}
            size = max_chars - chars
        out = {"output_type": kind, "data": data, "metadata": {}}
        if kind == "execute_result":
            out["execution_count"] = content.get("execution_count")
        outputs.append(out)
        chars += size
    if chars >= max_chars:
        outputs.append({"output_type": "stream", "name": "stderr",
                        "text": f"\n[output truncated at {max_chars:,} characters]\n"})
    return chars
