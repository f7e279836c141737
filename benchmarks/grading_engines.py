"""Grading engines: the local pool against Dask distributed on this machine, and what 20,000 submissions need.

    .venv/bin/python benchmarks/grading_engines.py                  # N = 8 correct a01 submissions, attacks too
    .venv/bin/python benchmarks/grading_engines.py -n 4 --no-attacks

1. Throughput: N correct a01 submissions graded by `commands.run_batch` on the local pool (--jobs 1, 2) and on
   a Dask LocalCluster of 1 and 2 one-thread workers, each timed after a warm-up unit per worker (the
   forkserver's start), so the figure is the steady state; the cluster's start and warm-up are printed apart.
2. Overhead per task: (Dask wall - local wall) x workers / N at the same parallelism, the round trip of an
   empty Dask task, and the coordinator's own `finish` per student (serial whatever the engine).
3. The hostile tail: the attack batch of tests/hostile.py (`a01_attacks`, under the attack test's limits)
   graded on the 2-worker cluster; each attack is checked against its reference, and the records'
   `usage.seconds` are the hostile costs.
4. Extrapolation to 20,000 submissions on W workers, each as fast as the one worker measured here: a fraction
   --hostile of them costs like the attack batch, the rest like the correct ones, each plus the measured unit
   overhead (wall per submission - usage.seconds, local pool, 1 job) and the engine's (the larger of the
   measured difference and an empty task's round trip). W workers finish in at most TOTAL * mean / W + the
   longest task (list scheduling); the W printed is the smallest that meets one hour, if the coordinator's
   serial finish allows it at all.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import hostile  # noqa: E402
from course_utils.grader import commands, engines, execute, record, unit  # noqa: E402

A = hostile.A01
OUT = ROOT / "build" / "benchmark"
TOTAL, HOUR = 20_000, 3600.0
LIMITS = execute.Limits(timeout=30.0, memory=5 << 30)   # tests/test_grading_attacks.py's


def run(course: unit.Course, students: list[str], pool: engines.Executor) -> dict:
    """One `run_batch` (its output kept aside): wall seconds, each finish's seconds, each unit's usage.seconds."""
    spent, real = [], commands.finish

    def timed(*args):
        t = time.perf_counter()
        rec = real(*args)
        spent.append(time.perf_counter() - t)
        return rec

    commands.finish, out = timed, io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            t0 = time.perf_counter()
            status = commands.run_batch(course, students, LIMITS, pool)
            wall = time.perf_counter() - t0
    finally:
        commands.finish = real
    assert status == 0, out.getvalue()[-3000:]
    recs = {s: record.read_record(course.root, A, s) for s in students}
    return {"wall": wall, "finish": spent, "records": recs,
            "usage": [r.get("usage", {}).get("seconds", 0.0) for r in recs.values()]}


def steady(course: unit.Course, engine: str, workers: int, students: list[str], warm: list[str]) -> dict:
    """Warm every worker with one unit, then time the batch; for Dask also the cluster's start."""
    t0 = time.perf_counter()
    owner = engines.DaskPool("local", workers) if engine == "dask" else None
    make = (lambda: engines.DaskPool(owner.address, workers)) if owner else (lambda: unit.LocalPool(workers))
    try:
        run(course, warm[:workers], make())
        started = time.perf_counter() - t0
        result = run(course, students, make())
        if owner:
            result["round_trip"] = round_trip(owner)
    finally:
        if owner:
            owner.stop()
    return result | {"engine": engine, "workers": workers, "start": started}


def round_trip(pool: engines.DaskPool, count: int = 50) -> float:
    """Mean seconds from submit to result of an empty task."""
    t0 = time.perf_counter()
    for _ in range(count):
        pool.client.submit(int, pure=False).result()
    return (time.perf_counter() - t0) / count


def attacks(course: unit.Course, a: hostile.Assignment) -> dict:
    """The attack batch on a 2-worker cluster; how many attacks scored exactly their reference."""
    with socket.socket() as s:                       # a port nobody listens on (no kernel reaches it anyway)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subs = hostile.a01_attacks(a, port)
    hostile.write_batch(course.root / "submitted", a, subs)
    owner = engines.DaskPool("local", 2)
    try:
        result = run(course, list(subs), engines.DaskPool(owner.address, 2))
    finally:
        owner.stop()
    points = {s: round(sum(c["points"] for c in r["cases"]), 6) for s, r in result["records"].items()}
    result["exact"] = sum(points[s] == points[ref] and word in "; ".join(result["records"][s]["notes"])
                          for s, (_, ref, word) in subs.items())
    return result


def needed(mean: float, longest: float) -> int:
    """Workers that finish TOTAL tasks of this mean cost within the hour (list scheduling bound)."""
    return math.ceil(TOTAL * mean / (HOUR - longest)) if longest < HOUR else -1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=8, help="correct submissions per timed batch (default 8)")
    p.add_argument("--hostile", type=float, default=0.05, help="share of submissions costing like the attack "
                   "batch in the extrapolation (default 0.05)")
    p.add_argument("--no-attacks", action="store_true", help="skip the attack batch (no hostile tail)")
    args = p.parse_args()
    os.environ.update(COURSE_THREADS="1", COURSE_OFFLINE="1", COURSE_MODE="quick")
    OUT.mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory(dir=OUT, prefix="engines-") as tmp:
        root = Path(tmp)
        hostile.released_copy(root, [A])
        a = hostile.Assignment(root, A)
        correct = [f"correct{i}" for i in range(args.n)]
        warm = [f"warm{i}" for i in range(2)]
        hostile.write_batch(root / "submitted", a, {s: (hostile.dump(a.correct()), "", "") for s in correct}
                            | {s: (hostile.dump(a.blank()), "", "") for s in warm})
        course = unit.Course(root, A)
        load = os.getloadavg()[0]
        runs = [steady(course, engine, w, correct, warm) for w in (1, 2) for engine in ("local", "dask")]
        hostile_run = None if args.no_attacks else attacks(course, a)
        report(args, runs, hostile_run, load)
    return 0


def report(args: argparse.Namespace, runs: list[dict], hostile_run: dict | None, load: float) -> None:
    n = args.n
    print(f"\n{os.cpu_count()} CPU cores, load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
          f"a01, {n} correct submissions per batch, --timeout 30, COURSE_THREADS=1\n")
    print("| engine | workers | wall (s) | s per submission | per hour | unit usage.seconds (mean) "
          "| start + warm-up (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(f"| {r['engine']} | {r['workers']} | {r['wall']:.1f} | {r['wall'] / n:.2f} | {3600 * n / r['wall']:.0f} "
              f"| {statistics.mean(r['usage']):.2f} | {r['start']:.1f} |")
    by = {(r["engine"], r["workers"]): r for r in runs}
    over = {w: (by["dask", w]["wall"] - by["local", w]["wall"]) * w / n for w in (1, 2)}
    finish = [t for r in runs for t in r["finish"]]
    print(f"\nengine overhead per task (Dask wall - local wall) x workers / N: {over[1]:+.2f} s (1 worker), "
          f"{over[2]:+.2f} s (2 workers); empty Dask task round trip {1000 * by['dask', 1]['round_trip']:.1f} ms")
    print(f"coordinator finish per student (gradebook, notebook, record, feedback page): "
          f"mean {statistics.mean(finish):.3f} s, max {max(finish):.3f} s, over {len(finish)} students")
    local1 = by["local", 1]
    unit_overhead = local1["wall"] / n - statistics.mean(local1["usage"])
    engine = max(over[1], by["dask", 1]["round_trip"])   # what the noise leaves of it, at least the round trip
    per_task = unit_overhead + engine
    normal = [u + per_task for u in local1["usage"]]
    tail = [u + per_task for u in hostile_run["usage"]] if hostile_run else [max(normal)]
    if hostile_run:
        u = sorted(hostile_run["usage"])
        print(f"attack batch on the 2-worker cluster: {hostile_run['exact']} of {len(u)} submissions scored exactly "
              f"their reference; {hostile_run['wall']:.0f} s wall; usage.seconds median {statistics.median(u):.1f}, "
              f"90th percentile {u[int(0.9 * (len(u) - 1))]:.1f}, max {u[-1]:.1f}")
    print(f"\nextrapolation: {TOTAL:,} submissions, per task = usage.seconds + {unit_overhead:.2f} s unit overhead + "
          f"{engine:.2f} s engine overhead; each worker as fast as the one measured here")
    coordinator = TOTAL * statistics.mean(finish)
    for share in sorted({0.0, args.hostile, 0.2}):
        mean = (1 - share) * statistics.mean(normal) + share * statistics.mean(tail)
        longest = max(tail) if share else max(normal)
        w = needed(mean, longest)
        print(f"  {share:.0%} costing like the attack batch: mean {mean:.2f} s per task, {TOTAL * mean / 3600:.1f} "
              f"worker-hours; one hour needs {w} workers (at most {TOTAL * mean / w + longest:.0f} s)")
    rate = HOUR / statistics.mean(finish)
    print(f"  the coordinator's serial finish: {coordinator:.0f} s for {TOTAL:,} students "
          + ("(within the hour)" if coordinator < HOUR else f"(over the hour: at most {rate:,.0f} students an hour)"))
    keep = {"runs": [{k: v for k, v in r.items() if k != "records"} for r in runs], "load": load,
            "attacks": {k: v for k, v in (hostile_run or {}).items() if k != "records"}}
    (OUT / "grading_engines.json").write_text(json.dumps(keep, indent=1))


if __name__ == "__main__":
    sys.exit(main())
