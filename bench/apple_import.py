"""Benchmark: importing an Apple Health export, side by side with its peers.

    python bench/apple_import.py [--records 1500000] [--out-dir DIR] [--no-peer]
                                 [--scales 0.5,2]

Generates the export once with shared/bench/gen_apple_export.py (cached in DIR), then
runs, each in its own subprocess:

1. a bare lxml iterparse of export.xml that only counts and clears ``<Record>``s
   (the "physical limit" of a Python parse, DEPENDENCIES.md section 3);
2. healthkit-to-sqlite 1.0.1 on export.zip, installed at run time into a throwaway
   virtualenv under DIR (a benchmark peer, not a dependency; skipped if pip fails);
3. ``healthspace import export.zip`` into a fresh home (init and user add untimed):
   parse, normalise, de-duplicate, encrypt and store.

For each it prints wall time, the largest process's peak RSS (getrusage of the
children) and the peak PSS of the whole process tree (sampled from /proc, so worker
processes count), then the ratios and PASS/FAIL against the goals: healthspace no
slower than the bare count (ratio <= 1.0), at least 10x faster than healthkit-to-sqlite,
and peak memory under 200 MB. The import is then repeated on exports of ``--scales``
times the size (half and double by default) to show that memory does not grow with the
input: every size within the budget, and the largest peak within 15% of the smallest.

The lxml count and the healthspace import run ``--repeat`` times, alternating, and the
best wall time of each counts (on a shared machine the others' load is noise); the
peer runs once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_apple_export.py"
PEER = "healthkit-to-sqlite==1.0.1"
MEMORY_BUDGET_MB = 200.0
FLAT_TOLERANCE = 1.15  # largest / smallest peak across sizes

LXML_COUNT = """
import sys
from lxml import etree
n = 0
for _, el in etree.iterparse(sys.argv[1], events=("end",), tag="Record", resolve_entities=False):
    n += 1
    el.clear()
    while el.getprevious() is not None:
        del el.getparent()[0]
print(n)
"""


@dataclass
class Run:
    name: str
    wall: float
    max_rss_mb: float  # the largest single process of the run (getrusage)
    tree_pss_mb: float  # the whole process tree, sampled (a small launcher included)
    ok: bool
    note: str = ""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler:
    """Peak PSS of a process and all its descendants, polled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo.extend(_children(pid))
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(p) for p in pids))
            self._stop.wait(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


# Runs the command and reports its own children's peak RSS: getrusage of this process's
# children would only ever report the largest of all runs so far.
_WRAP = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(f'\\n@@maxrss {peak}\\n')\n"
    "sys.exit(code)\n"
)


def measure(name: str, cmd: list[str], env: dict[str, str] | None = None) -> tuple[Run, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRAP, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    tree = sampler.stop()
    lines = err.strip().splitlines()
    rss_kb = next((int(x.split()[1]) for x in reversed(lines) if x.startswith("@@maxrss")), 0)
    errors = [x for x in lines if not x.startswith("@@maxrss")]
    note = "" if proc.returncode == 0 else (errors or ["failed"])[-1]
    return Run(name, wall, rss_kb / 1024, tree, proc.returncode == 0, note), out


def generate(records: int, out_dir: Path) -> Path:
    target = out_dir / f"export-{records}"
    archive = target / "export.zip"
    if archive.exists() and (target / "apple_health_export" / "export.xml").exists():
        return target
    print(f"generating {records:,} records into {target} ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, str(GENERATOR), "--records", str(records), "--out-dir", str(target)],
        check=True,
    )
    return target


def peer_venv(out_dir: Path) -> Path | None:
    venv = out_dir / "venv-healthkit-to-sqlite"
    tool = venv / "bin" / "healthkit-to-sqlite"
    if tool.exists():
        return tool
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", PEER],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"could not install {PEER} ({exc}); skipping that peer", file=sys.stderr)
        return None
    return tool if tool.exists() else None


def healthspace_run(archive: Path, scratch: Path) -> tuple[Run, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSPACE_")}
    env["HEALTHSPACE_HOME"] = str(scratch / "home")
    env["HEALTHSPACE_KEY_FILE"] = str(scratch / "keys" / "root.key")
    cli = [sys.executable, "-m", "healthspace"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    user = "bench@example.org"
    subprocess.run([*cli, "user", "add", user], env=env, check=True, capture_output=True)
    run, out = measure(
        "healthspace import", [*cli, "import", str(archive), "--user", user, "--json"], env
    )
    report: dict[str, object] = json.loads(out) if run.ok and out.strip() else {}
    if report.get("errors"):
        run.ok, run.note = False, str(report["errors"])
    return run, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=1_500_000)
    ap.add_argument(
        "--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "healthspace-bench"
    )
    ap.add_argument("--no-peer", action="store_true", help="skip healthkit-to-sqlite")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for lxml and healthspace")
    ap.add_argument(
        "--scales",
        default="0.5,2",
        help="also import exports this many times the size, for memory (empty: skip)",
    )
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    target = generate(args.records, args.out_dir)
    archive = target / "export.zip"
    xml = target / "apple_health_export" / "export.xml"
    size_mb = xml.stat().st_size / 1e6

    runs: list[Run] = []
    lxml_runs: list[Run] = []
    our_runs: list[tuple[Run, dict[str, object]]] = []
    lxml_cmd = [sys.executable, "-c", LXML_COUNT, str(xml)]
    for _ in range(max(1, args.repeat)):
        lxml_run, counted = measure("lxml iterparse, count only", lxml_cmd)
        lxml_run.note = lxml_run.note or f"{int(counted or 0):,} records"
        lxml_runs.append(lxml_run)
        with tempfile.TemporaryDirectory(dir=args.out_dir) as scratch:
            our_runs.append(healthspace_run(archive, Path(scratch)))
    lxml_run = min(lxml_runs, key=lambda r: r.wall)
    runs.append(lxml_run)

    peer: Run | None = None
    tool = None if args.no_peer else peer_venv(args.out_dir)
    if tool is not None:
        with tempfile.TemporaryDirectory(dir=args.out_dir) as scratch:
            peer, _ = measure(
                "healthkit-to-sqlite 1.0.1", [str(tool), str(archive), str(Path(scratch) / "hk.db")]
            )
        runs.append(peer)

    ours, report = min(our_runs, key=lambda r: r[0].wall)
    if ours.ok:
        ours.note = f"{report.get('samples', 0):,} samples, records {report.get('imported')}"
    runs.append(ours)
    print(
        "all runs, wall s: lxml "
        + ", ".join(f"{r.wall:.2f}" for r in lxml_runs)
        + "; healthspace "
        + ", ".join(f"{r.wall:.2f}" for r, _ in our_runs)
    )

    print(
        f"\nApple Health export: {args.records:,} records, export.xml {size_mb:.1f} MB, "
        f"export.zip {archive.stat().st_size / 1e6:.1f} MB, {os.cpu_count()} CPUs\n"
    )
    header = ("run", "wall s", "rec/s", "MB/s", "max RSS MB", "tree PSS MB")
    print(
        f"{header[0]:32s} {header[1]:>8s} {header[2]:>10s} {header[3]:>7s} "
        f"{header[4]:>11s} {header[5]:>12s}  note"
    )
    for r in runs:
        rate = args.records / r.wall if r.wall else 0.0
        print(
            f"{r.name:32s} {r.wall:8.2f} {rate:10,.0f} {size_mb / r.wall:7.1f} "
            f"{r.max_rss_mb:11.0f} {r.tree_pss_mb:12.0f}  {'' if r.ok else 'FAILED: '}{r.note}"
        )

    goals: list[tuple[str, bool | None]] = []
    ratio = ours.wall / lxml_run.wall
    print(f"\nhealthspace / lxml count:        {ratio:.2f}  (goal <= 1.0)")
    goals.append(("no slower than a bare lxml count", ours.ok and lxml_run.ok and ratio <= 1.0))
    if peer is not None and peer.ok:
        speedup = peer.wall / ours.wall
        print(f"healthkit-to-sqlite / healthspace: {speedup:.1f}x (goal >= 10x)")
        goals.append((">= 10x faster than healthkit-to-sqlite", ours.ok and speedup >= 10))
    else:
        goals.append((">= 10x faster than healthkit-to-sqlite", None))
    print(
        f"healthspace peak memory: tree PSS {ours.tree_pss_mb:.0f} MB, largest process "
        f"{ours.max_rss_mb:.0f} MB (budget {MEMORY_BUDGET_MB:.0f} MB)"
    )
    goals.append(
        (
            f"memory within {MEMORY_BUDGET_MB:.0f} MB",
            ours.ok and ours.tree_pss_mb <= MEMORY_BUDGET_MB,
        )
    )
    scales = [float(x) for x in args.scales.split(",") if x.strip()] if args.scales else []
    if scales and ours.ok:
        peaks = {args.records: ours}
        for scale in scales:
            size = round(args.records * scale)
            scaled = generate(size, args.out_dir)
            with tempfile.TemporaryDirectory(dir=args.out_dir) as scratch:
                run, _ = healthspace_run(scaled / "export.zip", Path(scratch))
            peaks[size] = run
        print("\nmemory by export size (healthspace import):")
        for size, run in sorted(peaks.items()):
            print(
                f"  {size:>10,} records  wall {run.wall:6.2f} s  tree PSS {run.tree_pss_mb:5.0f} MB"
                f"  largest process {run.max_rss_mb:5.0f} MB{'' if run.ok else '  FAILED'}"
            )
        pss = [r.tree_pss_mb for r in peaks.values()]
        spread = max(pss) / min(pss) if min(pss) else float("inf")
        print(f"  largest / smallest peak: {spread:.2f} (flat if <= {FLAT_TOLERANCE})")
        goals.append(
            (
                f"memory flat across {len(peaks)} sizes, all within {MEMORY_BUDGET_MB:.0f} MB",
                all(r.ok and r.tree_pss_mb <= MEMORY_BUDGET_MB for r in peaks.values())
                and spread <= FLAT_TOLERANCE,
            )
        )
    print()
    for goal, passed in goals:
        print(f"{'SKIP' if passed is None else 'PASS' if passed else 'FAIL'}  {goal}")
    return 0 if all(p is not False for _, p in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
