"""Drive one student's kernel from the grader's process: run cells, ask probes, survive what it does.

The kernel is started from a kernelspec (the sandboxed one when grading, a plain one when an author checks
cases). Everything read back is either a cell's outputs (kept for the autograded notebook, capped) or one
probe answer, decoded by `wire` into plain data. A cell or a probe that runs past its timeout is
interrupted; a kernel that ignores the interrupt or dies is restarted by `Kernel.restart`.

Every byte from the kernel is bounded before it is parsed: the client's ZeroMQ sockets refuse any frame over
MAX_FRAME_BYTES (libzmq drops the connection before reading it) and queue at most RECEIVE_HWM messages; every
output kind (streams, displays, errors, tracebacks, answers) counts against the cell's character cap and the
kernel's byte budget for the whole submission (`Kernel.budget`); past the budget nothing more is kept. A cell
whose outputs were dropped unread still ends when its reply arrives on the shell channel (`Run.lost`), and the
client's sockets are made anew (libzmq closes a connection for good on a frame too large). Only a
probe's run collects answers, at most MAX_ANSWERS of them. Text is made valid UTF-8 (lone surrogates replaced)
and display data valid nbformat (a MIME value is a string, or JSON data for a +json type) as it is read.
"""
from __future__ import annotations

import json
import queue
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .wire import clean
from .cases import Answer
from .probe import ANSWER_MIME

MAX_OUTPUT_CHARS = 200_000       # characters of output kept per cell (errors and tracebacks included)
MAX_FRAME_BYTES = 16 << 20       # one ZeroMQ frame from the kernel (an answer is at most wire.MAX_TEXT)
RECEIVE_HWM = 16                 # messages queued per socket before libzmq stops reading
BUDGET_BYTES = 32 << 20          # characters read from one kernel over a whole submission; then nothing is kept
MAX_ANSWERS = 4                  # answer displays kept per probe (one is the answer; more is a protocol error)
INTERRUPT_GRACE = 5.0            # seconds a kernel gets to honour an interrupt before it is restarted
REPLY_GRACE = 2.0                # seconds to wait for outputs after the cell's reply (iopub may have dropped some)


def bounded_context():
    """A ZeroMQ context whose sockets refuse frames over MAX_FRAME_BYTES and queue at most RECEIVE_HWM messages."""
    import zmq

    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    ctx.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
    return ctx


@dataclass
class Run:
    """What one cell did: its outputs (nbformat dicts) and how it ended."""

    outputs: list[dict] = field(default_factory=list)
    status: str = "ok"           # ok | error | timeout | died
    ename: str = ""
    evalue: str = ""
    execution_count: int | None = None
    answers: list[str] = field(default_factory=list)   # raw ANSWER_MIME payloads displayed by the cell
    lost: bool = False           # output was dropped unread (a frame over MAX_FRAME_BYTES)


class Kernel:
    """A started kernel and a blocking client, with timeouts and restarts."""

    def __init__(self, kernel_name: str = "python3", cwd: str | None = None, kernel_spec_manager: Any = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 60.0):
        from jupyter_client import KernelManager

        self.context = bounded_context()
        kwargs = {"kernel_name": kernel_name, "context": self.context}
        if kernel_spec_manager is not None:
            kwargs["kernel_spec_manager"] = kernel_spec_manager
        self.km = KernelManager(**kwargs)
        self.cwd, self.env, self.startup_timeout = cwd, env, startup_timeout
        self.kc = None
        self.restarts = 0
        self.budget = BUDGET_BYTES      # characters still to be kept from this kernel (all starts together)

    def start(self) -> None:
        """Start the kernel and wait until it answers."""
        kw: dict[str, Any] = {}
        if self.cwd:
            kw["cwd"] = self.cwd
        if self.env is not None:
            kw["env"] = self.env
        self.km.start_kernel(**kw)
        self.kc = self.km.client(context=self.context)
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

    def run(self, code: str, timeout: float, max_chars: int = MAX_OUTPUT_CHARS, answers: bool = False) -> Run:
        """Execute code; collect outputs (and, for a probe, answers) until idle, the timeout passes, or it dies."""
        run = Run()
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
        deadline, chars, interrupted, replied = time.monotonic() + timeout, 0, False, None
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
            if replied is None and self._replied(msg_id):
                replied = time.monotonic()
            if replied is not None and time.monotonic() - replied > REPLY_GRACE:
                run.lost = True          # the reply came, the idle status did not: iopub dropped a frame too large
                self._reconnect()        # libzmq does not reconnect a connection it closed for a protocol error
                break
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 0.2 if replied else 1.0))
            except queue.Empty:
                continue
            parent = msg.get("parent_header")
            if not isinstance(parent, dict) or parent.get("msg_id") != msg_id:
                continue
            kind, content = msg.get("msg_type"), msg.get("content")
            if not isinstance(content, dict):
                continue
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "execute_input":
                count = content.get("execution_count")
                run.execution_count = count if type(count) is int else None
            elif kind == "error":
                if run.status != "timeout":
                    run.status = "error"
                run.ename, run.evalue = clean(content.get("ename", ""), 200), clean(content.get("evalue", ""), 2000)
                tb = content.get("traceback")
                out = {"output_type": "error", "ename": run.ename, "evalue": run.evalue,
                       "traceback": [clean(t, 2000) for t in tb[:50]] if isinstance(tb, list) else []}
                chars = self._account(run.outputs, out, chars, max_chars)
            elif kind in ("stream", "display_data", "execute_result"):
                data = content.get("data", {}) if kind != "stream" else {}
                if isinstance(data, dict) and ANSWER_MIME in data:
                    payload = data[ANSWER_MIME]
                    if answers and len(run.answers) < MAX_ANSWERS and isinstance(payload, str) \
                            and len(payload) <= wire.MAX_TEXT:
                        run.answers.append(payload)
                    elif answers:
                        run.answers.append("")          # counted: more than one answer is a protocol error
                    continue
                chars = self._account(run.outputs, _output(kind, content), chars, max_chars)
        if interrupted and run.status != "timeout":
            run.status = "timeout"
        return run

    def _reconnect(self) -> None:
        """A new iopub socket (libzmq closed the old one for a frame over MAX_FRAME_BYTES), once it hears the kernel."""
        self.kc.iopub_channel.stop()
        self.kc._iopub_channel = None           # the client makes (and subscribes) a new one on next access
        self.kc.iopub_channel.start()
        for _ in range(10):                      # until a kernel_info round trip shows up on the new socket
            msg_id, end = self.kc.kernel_info(), time.monotonic() + 0.5
            while time.monotonic() < end:
                try:
                    msg = self.kc.get_iopub_msg(timeout=0.1)
                except queue.Empty:
                    continue
                parent = msg.get("parent_header")
                if isinstance(parent, dict) and parent.get("msg_id") == msg_id:
                    return

    def _replied(self, msg_id: str) -> bool:
        """True when the shell channel holds the execute_reply to msg_id (other replies are dropped)."""
        while self.kc.shell_channel.msg_ready():
            try:
                reply = self.kc.get_shell_msg(timeout=0)
            except queue.Empty:
                return False
            parent = reply.get("parent_header")
            if isinstance(parent, dict) and parent.get("msg_id") == msg_id:
                return True
        return False

    def ask(self, request: dict, timeout: float) -> Answer:
        """Send one probe request; return the decoded answer (ok=False with a reason on any failure)."""
        nonce = secrets.token_hex(8)
        text = json.dumps({**request, "nonce": nonce}, separators=(",", ":"))
        code = f"__import__('course_utils.grader.probe', fromlist=['serve']).serve({text!r})"
        run = self.run(code, timeout, max_chars=20_000, answers=True)
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


    def _account(self, outputs: list[dict], out: dict | None, chars: int, max_chars: int) -> int:
        """Keep one output within the cell's cap and the kernel's budget; return the cell's characters so far."""
        if out is None:
            return chars
        size = _size(out)
        room = min(max_chars - chars, self.budget)
        self.budget = max(0, self.budget - size)
        if room <= 0:
            return chars
        if size > room:
            if out["output_type"] == "stream":
                out["text"] = out["text"][:room]
            elif out["output_type"] == "error":
                out.update(evalue=out["evalue"][:room], traceback=[f"[traceback of {size:,} characters not kept]"])
            else:
                out["data"] = {"text/plain": "[output too large, not kept]"}
            size = room
        if out["output_type"] == "stream" and outputs and outputs[-1].get("output_type") == "stream" \
                and outputs[-1].get("name") == out["name"]:
            outputs[-1]["text"] += out["text"]
        else:
            outputs.append(out)
        chars += size
        if chars >= max_chars or self.budget <= 0:
            what = f"{max_chars:,} characters" if chars >= max_chars else "the submission's output budget"
            outputs.append({"output_type": "stream", "name": "stderr", "text": f"\n[output truncated at {what}]\n"})
            chars = max_chars
        return chars


def _output(kind: str, content: dict) -> dict | None:
    """A stream or display message as a valid nbformat output (None when it carries nothing that can be kept)."""
    if kind == "stream":
        return {"output_type": "stream", "name": "stderr" if content.get("name") == "stderr" else "stdout",
                "text": clean(content.get("text", ""), MAX_OUTPUT_CHARS)}
    data = content.get("data")
    kept = {}
    for mime, value in (data.items() if isinstance(data, dict) else ()):
        if not isinstance(mime, str) or len(mime) > 100:
            continue
        if mime.endswith("json") and isinstance(value, (dict, list)):
            kept[clean(mime, 100)] = value
        elif isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            kept[clean(mime, 100)] = clean(value, MAX_OUTPUT_CHARS)
    if not kept:
        return None
    out = {"output_type": kind, "data": kept, "metadata": {}}
    if kind == "execute_result":
        count = content.get("execution_count")
        out["execution_count"] = count if type(count) is int else None
    return out


def _size(out: dict) -> int:
    """Characters an output carries (its text, data values, error message and traceback)."""
    if out["output_type"] == "stream":
        return len(out["text"])
    if out["output_type"] == "error":
        return len(out["ename"]) + len(out["evalue"]) + sum(map(len, out["traceback"]))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in out["data"].values())
