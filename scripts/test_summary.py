#!/usr/bin/env python3
"""The closing report of `make test`: counts each distinct test once.

    test_summary.py DIR

DIR holds, per step of `make test`, `make-test-STEP.log` (its output),
`make-test-STEP.skips` (lines `TEST<TAB>whole|part<TAB>REASON` written by
the tests' skip helpers: agent/src/testutil.rs, tests/src/lib.rs) and one
line `STEP RC SECONDS` per step in `make-test-steps.tsv`, in order.

A test is a libtest name (`test NAME ... ok|FAILED|ignored`); the feature
matrix and the qemu boards run the unit tests again, so one test has
several runs. A run is skipped when its test logged a whole skip in that
step (or was ignored), failed when libtest says FAILED, passed otherwise.
A test failed if any run failed, passed if any run passed, else it was
skipped. A step that failed without a failed test (fmt, clippy, a build
error, a fuzz crash) counts as one failed test named `step:STEP`.

Prints per step counts, every skip with its reason, and last the line
`tests: N passed, N failed, N skipped`. Exits 1 if anything failed.
"""
import os
import re
import sys

RESULT = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)\s*$")
START = re.compile(r"^test (.+?) \.\.\. ")
BARE = re.compile(r"^(ok|FAILED|ignored)\s*$")


def runs_of(log_path):
    """(name, outcome) per libtest result line; a result printed on a
    later line (a test that wrote to fd 2 under --test-threads=1) is
    joined to the name it belongs to."""
    runs, pending = [], None
    try:
        lines = open(log_path, errors="replace").read().splitlines()
    except OSError:
        return runs
    for line in lines:
        m = RESULT.match(line)
        if m:
            runs.append((m.group(1), m.group(2)))
            pending = None
            continue
        m = START.match(line)
        if m:
            pending = m.group(1)
            continue
        m = BARE.match(line)
        if m and pending is not None:
            runs.append((pending, m.group(1)))
            pending = None
    return runs


def skips_of(path):
    out = []
    try:
        for line in open(path, errors="replace").read().splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                out.append(tuple(parts))
    except OSError:
        pass
    return out


def main():
    d = sys.argv[1]
    steps = []
    for line in open(os.path.join(d, "make-test-steps.tsv")).read().splitlines():
        step, rc, secs = line.split()
        steps.append((step, int(rc), int(secs)))
    status = {}  # test -> set of outcomes ("passed", "failed", "skipped")
    listed = []  # (step, test, kind, reason)
    print("make test: per step (test runs; a test may run in several steps)")
    for step, rc, secs in steps:
        runs = runs_of(os.path.join(d, f"make-test-{step}.log"))
        skips = skips_of(os.path.join(d, f"make-test-{step}.skips"))
        whole = {t for t, kind, _ in skips if kind == "whole"}
        n = {"passed": 0, "failed": 0, "skipped": 0}
        for name, outcome in runs:
            if outcome == "FAILED":
                o = "failed"
            elif outcome == "ignored" or name in whole:
                o = "skipped"
            else:
                o = "passed"
            n[o] += 1
            status.setdefault(name, set()).add(o)
        if rc != 0 and n["failed"] == 0:
            status.setdefault(f"step:{step}", set()).add("failed")
            n["failed"] += 1
        listed += [(step, t, kind, reason) for t, kind, reason in skips]
        listed += [(step, name, "whole", "#[ignore]: run by hand (a measurement or a tool), not a check")
                   for name, outcome in runs if outcome == "ignored"]
        word = "ok" if rc == 0 else "FAILED"
        if runs or n["failed"]:
            print(f"  {step:<9} {word:<6} {n['passed']} passed, {n['failed']} failed, "
                  f"{n['skipped']} skipped ({secs} s)")
        else:
            print(f"  {step:<9} {word:<6} ({secs} s)")
    if listed:
        print(f"skipped ({len(listed)}; 'part': the rest of the test ran):")
        for step, t, kind, reason in listed:
            part = " (part)" if kind == "part" else ""
            print(f"  {step}: {t}{part}: {reason}")
    failed = sorted(t for t, s in status.items() if "failed" in s)
    passed = [t for t, s in status.items() if "failed" not in s and "passed" in s]
    skipped = [t for t, s in status.items() if s == {"skipped"}]
    for t in failed:
        print(f"FAILED: {t}")
    print(f"tests: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
