#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The summary of scripts/test.sh, from meson testlog.json files (and the
# same format from scripts/fuzz.sh). The unit counted is one check: each
# TAP subtest of a test program (a harness.h TEST, a check of a python
# TAP script), or the whole program if it reports none (fuzz targets).
#   ok            passed
#   ok # SKIP     skipped, listed with its reason
#   not ok # TODO an expected failure (a known bug, marked): listed on
#                 the "expected failures:" line, neither passed nor failed
#   ok # TODO     failed: the known bug looks fixed, remove the marker
#   not ok        failed
# A program that failed (crash, timeout, non-zero exit, bail out) without
# a failing subtest counts one failure more, so nothing bad goes unseen.
# Prints the failures, skips and expected failures, and then, alone on
# the last line, "N passed, N failed, N skipped".
# usage: test-summary.py FMT_OK BUILDS_FAILED TESTLOG...
#   e.g. after meson test -C build:
#   scripts/test-summary.py 1 0 build/meson-logs/testlog.json
#   FMT_OK: 1 if the format check passed (counts as one check), else 0
#   BUILDS_FAILED: builds that did not compile (one failure each)
# Exit: 1 if anything failed or no test ran, else 0.
import json
import os
import re
import sys

# meson's own TAP parser (mesonbuild/mtest.py), so both agree.
DIRECTIVE = r'(?:\s*\#\s*([Ss][Kk][Ii][Pp]\S*|[Tt][Oo][Dd][Oo])\b\s*(.*))?'
TEST_RE = re.compile(r'((?:not )?ok)\s*(?:([0-9]+)\s*)?([^#]*)' + DIRECTIVE)
PLAN_SKIP_RE = re.compile(r'1\.\.0\s*#\s*[Ss][Kk][Ii][Pp]\S*\s*(.*)')
BAD = {'FAIL', 'ERROR', 'TIMEOUT', 'UNEXPECTEDPASS', 'INTERRUPT'}


def subtests(stdout):
    """(result, name, reason) per TAP test line of a program's stdout."""
    out = []
    for line in (stdout or '').splitlines():
        m = TEST_RE.match(line)
        if not m:
            continue
        ok, num, name, directive, why = m.groups()
        name = name.strip().lstrip('- ').strip() or f'subtest {num}'
        directive = (directive or '').upper()
        why = (why or '').strip()
        if directive.startswith('SKIP') and ok == 'ok':
            out.append(('skip', name, why))
        elif directive == 'TODO':
            out.append(('xpass' if ok == 'ok' else 'xfail', name, why))
        else:
            out.append(('pass' if ok == 'ok' else 'fail', name, why))
    return out


def main(argv):
    fmt_ok = argv[1] == '1'
    builds_failed = int(argv[2])
    passed = failed = skipped = 0
    skips, xfails, fails = [], [], []
    progs = 0
    if builds_failed:
        fails.append(f'{builds_failed} build(s) did not compile')
        failed += builds_failed
    if fmt_ok:
        passed += 1
    else:
        failed += 1
        fails.append('format check')
    for path in argv[3:]:
        base = os.path.basename(path)
        if base.startswith('testlog-'):
            build = base[len('testlog-'):].rsplit('.json', 1)[0]
        else:  # BUILDDIR/meson-logs/testlog.json
            build = os.path.basename(os.path.dirname(os.path.dirname(
                os.path.abspath(path))))
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                t = json.loads(line)
                progs += 1
                r, prog = t.get('result'), f"{build}: {t['name']}"
                subs = subtests(t.get('stdout'))
                bad_sub = False
                for res, name, why in subs:
                    where = f'{prog} / {name}'
                    if res == 'pass':
                        passed += 1
                    elif res == 'skip':
                        skipped += 1
                        skips.append(f'{where} ({why})' if why else where)
                    elif res == 'xfail':
                        xfails.append(f'{where} ({why})' if why else where)
                    elif res == 'xpass':
                        failed += 1
                        bad_sub = True
                        fails.append(f'{where} (unexpectedly passed: the '
                                     f'known bug looks fixed, remove its '
                                     f'marker)')
                    else:
                        failed += 1
                        bad_sub = True
                        fails.append(where)
                if r in BAD and not bad_sub:
                    failed += 1
                    fails.append(f'{prog} ({r})')
                elif subs:
                    continue
                elif r == 'SKIP':
                    m = PLAN_SKIP_RE.search(t.get('stdout') or '')
                    skipped += 1
                    skips.append(f'{prog} ({m.group(1)})' if m else prog)
                elif r == 'EXPECTEDFAIL':
                    xfails.append(prog)
                elif r == 'OK':
                    passed += 1
    for s in fails:
        print(f'FAILED: {s}')
    for s in skips:
        print(f'skipped: {s}')
    if progs == 0:
        print('no test ran', file=sys.stderr)
        failed += 1
    if xfails:
        print(f'expected failures: {len(xfails)} ({"; ".join(xfails)})')
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
