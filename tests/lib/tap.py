# SPDX-License-Identifier: MIT
"""TAP for the Python checkers in tests/: check() and skip() record
results, finish() prints them as TAP (a failed check's detail as
comments) and exits 1 if any failed. Import with the tests/lib folder on
sys.path."""

import sys

_results = []


def check(name, ok, detail=''):
    """Record a check; returns @ok so callers can stop early."""
    _results.append((name, bool(ok), detail, None))
    return ok


def skip(name, why):
    """A part that cannot run here: a TAP skip, counted by
    scripts/test.sh."""
    _results.append((name, True, '', why))


def finish(max_detail=40):
    """Print the plan and every result; exit 0 if all passed, else 1."""
    print(f'1..{len(_results)}')
    for i, (name, ok, detail, why) in enumerate(_results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}" +
              (f' # SKIP {why}' if why else ''))
        if not ok and detail:
            for line in str(detail).splitlines()[:max_detail]:
                print(f'# {line}')
    sys.exit(0 if all(ok for _, ok, _, _ in _results) else 1)
