#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Smoke test of bench/consumer-drive (the single-threaded consumer path
# profiled with callgrind in docs/PERFORMANCE.md), run natively, as TAP:
# every strict-unmap command consumed and completed, one null-backend
# ioctl per pass, coalescing never grows a batch, the budget bounds the
# batch, bad arguments refused.
# usage: check-consumer-drive.py CONSUMER_DRIVE
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'lib'))
from tap import check, finish  # noqa: E402

drive = sys.argv[1]
LINE = re.compile(r'consumer-drive: (\d+) guest commands \((\d+) CMD_SYNCs\) '
                  r'in (\d+) passes, budget (\d+): (\d+) ioctls, (\d+) host '
                  r'commands')


def run(n, budget):
    p = subprocess.run([drive, '-n', str(n), '-b', str(budget)],
                       capture_output=True, text=True, timeout=60)
    name = f'n {n} budget {budget}'
    if not check(f'{name}: exit 0', p.returncode == 0,
                 p.stdout + p.stderr):
        return None
    m = LINE.search(p.stdout)
    if not check(f'{name}: summary line', m, p.stdout):
        return None
    return [int(x) for x in m.groups()]


by_budget = {}
for budget in (16, 64, 256):
    r = run(20000, budget)
    if not r:
        continue
    cmds, syncs, passes, b, ioctls, host = r
    by_budget[budget] = r
    name = f'budget {budget}'
    # strict-unmap: TLBI_NH_VA + CMD_SYNC per write, whole writes only.
    check(f'{name}: all 20000 commands, half of them SYNCs',
          cmds == 20000 and syncs == 10000, str(r))
    check(f'{name}: one ioctl per pass', ioctls == passes, str(r))
    check(f'{name}: no pass larger than the budget',
          passes >= cmds / budget, str(r))
    check(f'{name}: coalescing never adds commands, issues some',
          0 < host <= cmds - syncs, str(r))
if 16 in by_budget and 256 in by_budget:
    check('a larger budget makes fewer ioctls',
          by_budget[256][4] < by_budget[16][4], str(by_budget))
for args in (['-b', '0'], ['-b', '257'], ['-n', '1']):
    p = subprocess.run([drive] + args, capture_output=True, timeout=30)
    check(f'usage error {args}: exit 2', p.returncode == 2,
          f'rc {p.returncode}')

finish()
