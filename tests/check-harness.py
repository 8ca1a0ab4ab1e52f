#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# harness.h and scripts/test-summary.py checked on a program with every
# outcome (tests/harness-selftest.c), as TAP: skips are "ok # SKIP", an
# expected failure that fails is "not ok # TODO" and does not fail the
# program, one that passes is "ok # TODO" and does, T_XFAIL from the
# environment marks a test (and a stale T_XFAIL entry is an error), and
# the summary counts each subtest, lists skips and expected failures, and
# ends with "N passed, N failed, N skipped" alone on its last line.
# usage: check-harness.py HARNESS_SELFTEST TEST_SUMMARY_PY
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
from tap import check, finish  # noqa: E402

prog, summary = sys.argv[1:3]


def run(args, xfail=None):
    env = dict(os.environ)
    env.pop('T_XFAIL', None)
    if xfail is not None:
        env['T_XFAIL'] = xfail
    p = subprocess.run([prog] + args, capture_output=True, text=True,
                       timeout=60, env=env)
    tap = [ln for ln in p.stdout.splitlines()
           if ln.startswith(('ok ', 'not ok ', 'Bail out!'))]
    return p.returncode, tap, p


def one(name, args, want_rc, want_line, xfail=None):
    rc, tap, p = run(args, xfail)
    check(f'{name}: exit {want_rc}', rc == want_rc,
          f'rc {rc}\n{p.stdout}\n{p.stderr}')
    check(f'{name}: the TAP line', tap == [want_line],
          f'want {want_line}\ngot ' + '\n'.join(tap))


one('pass', ['passes'], 0, 'ok 1 passes')
one('skip', ['skips'], 0, 'ok 1 skips # SKIP nothing to run here')
one('failure', ['plain_failure'], 1, 'not ok 1 plain_failure')
one('xfail by a check', ['xfail_fails'], 0,
    'not ok 1 xfail_fails # TODO expected failure: demo bug 1')
one('xfail by a crash', ['xfail_crashes'], 0,
    'not ok 1 xfail_crashes # TODO expected failure: demo bug 2')
one('xfail with a fixture', ['xfail_fixture'], 0,
    'not ok 1 fx.xfail_fixture # TODO expected failure: demo bug 4')
one('marked but passing: a failure', ['xfail_fixed'], 1,
    'ok 1 xfail_fixed # TODO unexpectedly passed, expected to fail: '
    'demo bug 3')
one('T_XFAIL from the environment', ['env_marked'], 0,
    'not ok 1 env_marked # TODO expected failure: issue 0 demo',
    xfail='skips: other; env_marked: issue 0 demo')
one('T_XFAIL without a reason', ['env_marked'], 0,
    'not ok 1 env_marked # TODO expected failure: marked by T_XFAIL',
    xfail=' env_marked ')
one('T_XFAIL on a passing test', ['passes'], 1,
    'ok 1 passes # TODO unexpectedly passed, expected to fail: x',
    xfail='skips: y;passes: x')
rc, tap, p = run(['passes'], xfail='no_such_test: gone')
check('T_XFAIL naming no test: exit 1, bail out',
      rc == 1 and tap and tap[0].startswith('Bail out!'),
      f'rc {rc}\n{p.stdout}\n{p.stderr}')

# The summary over one program with every outcome, as meson logs it.
rc, tap, p = run([])
with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, 'testlog-selftest.json')
    with open(log, 'w') as f:
        f.write(json.dumps({'name': 'selftest', 'result': 'ERROR',
                            'stdout': p.stdout}) + '\n')
        f.write(json.dumps({'name': 'clean', 'result': 'OK',
                            'stdout': '1..2\nok 1 - a\nok 2 - b # skip '
                                      'why not\n'}) + '\n')
        f.write(json.dumps({'name': 'crashed', 'result': 'ERROR',
                            'stdout': '1..3\nok 1 a\n'}) + '\n')
        f.write(json.dumps({'name': 'fuzz-x', 'result': 'OK'}) + '\n')
        f.write(json.dumps({'name': 'whole-skip', 'result': 'SKIP',
                            'stdout': '1..0 # SKIP no device\n'}) + '\n')
    s = subprocess.run([sys.executable, summary, '1', '0', log],
                       capture_output=True, text=True, timeout=60)
lines = s.stdout.splitlines()
# passed: passes, fmt, a, crashed/a, fuzz-x; failed: plain_failure, env_marked,
# xfail_fixed (ok # TODO), crashed (no failing subtest); skipped:
# skips, b, whole-skip; expected: 3 xfails.
want = '5 passed, 4 failed, 3 skipped'
check('summary: last line', lines and lines[-1] == want,
      s.stdout + s.stderr)
check('summary: exit 1 on failures', s.returncode == 1, str(s.returncode))
xl = [ln for ln in lines if ln.startswith('expected failures: ')]
check('summary: expected failures on one line before the last',
      len(xl) == 1 and lines.index(xl[0]) == len(lines) - 2 and
      xl[0].startswith('expected failures: 3 (') and
      'xfail_fails (expected failure: demo bug 1)' in xl[0] and
      'fx.xfail_fixture' in xl[0], s.stdout)
check('summary: every skip listed with its reason',
      'skipped: selftest: selftest / skips (nothing to run here)' in lines
      and 'skipped: selftest: clean / b (why not)' in lines and
      'skipped: selftest: whole-skip (no device)' in lines, s.stdout)
check('summary: the unexpected pass and the crash listed as failures',
      any(ln.startswith('FAILED: selftest: selftest / xfail_fixed')
          for ln in lines) and
      'FAILED: selftest: crashed (ERROR)' in lines, s.stdout)
with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, 'testlog-ok.json')
    with open(log, 'w') as f:
        f.write(json.dumps({'name': 'clean', 'result': 'OK',
                            'stdout': '1..1\nok 1 a\n'}) + '\n')
    s = subprocess.run([sys.executable, summary, '1', '0', log],
                       capture_output=True, text=True, timeout=60)
check('summary: all good, exit 0, no expected-failures line',
      s.returncode == 0 and s.stdout.splitlines() ==
      ['2 passed, 0 failed, 0 skipped'], s.stdout)

finish()
