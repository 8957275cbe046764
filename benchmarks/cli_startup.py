"""How long ``dkt`` takes to answer before doing any work, and what it imports to do so.

    python benchmarks/cli_startup.py [--repeats 7] [--warmup 1] [--json out.json]

Each command (``dkt --help``, ``dkt --version``, ``dkt harmonize --help`` and the other
subcommands' ``--help``) runs as a fresh ``python -m dkt_cli`` process, as a user's shell
starts it: a warm-up round, then ``--repeats`` rounds taking turns command by command, so
noise from other processes hits every command alike. Reported: median and min-max wall
seconds, and whether torch, numpy or the training code were imported (``-X importtime``,
one extra run each). The target (issue 25): under 0.5 s for the first three, no torch.
Run it on a quiet machine (``uptime``): other processes on two cores double the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (
    ("--help",),
    ("--version",),
    ("harmonize", "--help"),
    ("train", "--help"),
    ("evaluate", "--help"),
    ("export", "--help"),
)
HEAVY = ("torch", "numpy", "training", "dkt.evaluation")


def run_once(args: tuple[str, ...]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dkt_cli", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def heavy_imports(args: tuple[str, ...]) -> list[str]:
    """The heavy top-level modules the command imports (from ``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dkt_cli", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return [name for name in HEAVY if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    times: dict[tuple[str, ...], list[float]] = {c: [] for c in COMMANDS}
    for _ in range(opts.warmup):
        for command in COMMANDS:
            run_once(command)
    for round_ in range(opts.repeats):
        order = COMMANDS[round_ % len(COMMANDS) :] + COMMANDS[: round_ % len(COMMANDS)]
        for command in order:
            times[command].append(run_once(command))
    print(f"load average {os.getloadavg()[0]:.2f}; {opts.repeats} runs after {opts.warmup} warm-up")
    print(f"{'command':<24} {'median s':>9} {'min-max s':>13}  heavy imports")
    rows = []
    for command, samples in times.items():
        heavy = heavy_imports(command)
        name = "dkt " + " ".join(command)
        median = statistics.median(samples)
        print(
            f"{name:<24} {median:>9.3f} {min(samples):>6.3f}-{max(samples):<6.3f}  "
            f"{', '.join(heavy) or '-'}"
        )
        rows.append(
            {
                "command": name,
                "median_s": median,
                "min_s": min(samples),
                "max_s": max(samples),
                "heavy_imports": heavy,
            }
        )
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
