"""Extraction throughput: seed-corpus documents per second on one core.

Loads the rules once, reads the seed corpus through its manifest (the same
reading path as ``service extract --manifest``), then runs ``RuleSet.extract``
over the documents in turn for about five seconds, in this one process pinned
to one CPU where the platform allows it. Prints documents per CPU-second (the
process's own CPU time, so a busy machine does not skew it; the wall-clock rate
is printed beside it), the mean and 99th-percentile CPU time per document, and
the machine it ran on.

The goal (issue 3) is at least 200 seed-size documents per second, so that the
rules are never the pipeline's bottleneck. ``--fail-under RATE`` makes the
script exit with status 1 below a rate, for use in CI.

Run from the repository root:

    .venv/bin/python bench/bench_extract.py [--seconds 5] [--fail-under 200]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from service.corpus import read_manifest  # noqa: E402
from service.documents import read_manifest_doc  # noqa: E402
from service.rules import Document, RuleSet, load_rules  # noqa: E402

GOAL = 200.0  # documents per second


def pin_to_one_cpu() -> str:
    """Pin this process to the first CPU it may use; say what happened."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[0]})
    return f"pinned to CPU {allowed[0]} (of {len(allowed)} available)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def run(
    rules: RuleSet, documents: list[Document], seconds: float
) -> tuple[list[float], float, float]:
    """Extract documents in turn until ``seconds`` have passed.

    Returns the per-document CPU times, and the wall-clock and CPU seconds of the
    whole run. CPU time is this process's own: other work on the machine does not
    inflate it, so it is the figure for "one core".
    """
    timings: list[float] = []
    wall, cpu = time.perf_counter, time.process_time
    started, cpu_started = wall(), cpu()
    deadline = started + seconds
    i = 0
    while True:
        doc = documents[i % len(documents)]
        t0 = cpu()
        rules.extract(doc)
        timings.append(cpu() - t0)
        i += 1
        if wall() >= deadline and i % len(documents) == 0:  # whole passes only
            return timings, wall() - started, cpu() - cpu_started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time to run (default 5)")
    parser.add_argument(
        "--manifest",
        type=Path,
        default=ROOT / "corpus" / "seeds" / "MANIFEST.json",
        help="corpus manifest (default: the seed corpus)",
    )
    parser.add_argument(
        "--rules", type=Path, default=ROOT / "config" / "rules", help="rule directory"
    )
    parser.add_argument(
        "--fail-under",
        type=float,
        default=None,
        metavar="RATE",
        help="exit with status 1 when documents/second is below RATE",
    )
    args = parser.parse_args(argv)

    pinned = pin_to_one_cpu()
    t0 = time.perf_counter()
    rules = load_rules(args.rules)
    load_ms = (time.perf_counter() - t0) * 1000
    documents = [read_manifest_doc(doc) for doc in read_manifest(args.manifest)]
    if not documents:
        print("no documents in the manifest", file=sys.stderr)
        return 2
    chars = sum(len(d.text) for d in documents)
    events = sum(len(rules.extract(d)) for d in documents)  # warm-up pass, not timed

    timings, elapsed, cpu_seconds = run(rules, documents, args.seconds)
    timings.sort()
    rate = len(timings) / cpu_seconds
    wall_rate = len(timings) / elapsed
    mean_ms = statistics.fmean(timings) * 1000
    p99_ms = percentile(timings, 0.99) * 1000

    print(
        f"corpus:       {len(documents)} documents, {chars:,} characters, "
        f"{events} events per pass ({args.manifest.name})"
    )
    print(f"rules:        loaded once in {load_ms:.0f} ms")
    print(f"run:          {len(timings)} extractions in {elapsed:.2f} s, one process, {pinned}")
    print(f"throughput:   {rate:.1f} documents per CPU-second (goal >= {GOAL:.0f})")
    print(f"wall clock:   {wall_rate:.1f} documents/s (lower when other work shares the CPU)")
    print(
        f"per document: CPU mean {mean_ms:.2f} ms, p99 {p99_ms:.2f} ms, "
        f"max {timings[-1] * 1000:.2f} ms"
    )
    print(
        f"machine:      {platform.platform()}; {platform.python_implementation()} "
        f"{platform.python_version()}; CPU {cpu_model()}; {os.cpu_count()} logical CPUs"
    )
    if args.fail_under is not None and rate < args.fail_under:
        print(f"FAIL: {rate:.1f} documents/s is below {args.fail_under:.0f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
