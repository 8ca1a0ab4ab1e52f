#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs the smmu-trace executable on a trace and checks, as TAP:
#  1. `stats --json` equals the trace's .stats.json (every key there; the
#     means and duration to their 3 printed decimals), and no op_* count
#     appears that the JSON lacks;
#  2. `validate --caps qemu` exits 0 (CFGI_STE* left to the VMM);
#  3. `validate --ring` exits 1: in a ring, the CFGI_STE* are illegal;
#  4. `coalesce --window 16` takes in exactly the forwarded commands the
#     JSON counts, sends fewer, and needs at least ceil(out / 63) ioctls.
# usage: check-smmu-trace.py SMMU_TRACE TRACE STATS_JSON
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'lib'))
from tap import check, finish  # noqa: E402

tool, trace, expected_path = sys.argv[1:4]


with open(expected_path) as f:
    want = json.load(f)
run = subprocess.run([tool, 'stats', '--json', trace], capture_output=True,
                     text=True, timeout=120)
check('stats exits 0', run.returncode == 0, run.stderr.strip())
try:
    got = json.loads(run.stdout)
except ValueError as e:
    got = {}
    check('stats --json is JSON', False, str(e))
for key, val in want.items():
    if key in ('errors', 'n_errors'):
        continue  # capture-time QEMU errors: not in the trace body
    if isinstance(val, float):
        ok = key in got and abs(got[key] - val) < 0.0015
    else:
        ok = got.get(key) == val
    check('stats %s' % key, ok, 'got %r want %r' % (got.get(key), val))
extra = sorted(k for k in got if k.startswith('op_') and k not in want)
check('no unexpected opcodes', not extra, 'extra: %r' % extra)

run = subprocess.run([tool, 'validate', '--caps', 'qemu', trace],
                     capture_output=True, text=True, timeout=120)
check('validate --caps qemu exits 0', run.returncode == 0,
      (run.stdout + run.stderr).strip()[-500:])
run = subprocess.run([tool, 'validate', '--ring', trace],
                     capture_output=True, text=True, timeout=120)
check('validate --ring exits 1 (CFGI_STE in a ring)', run.returncode == 1,
      'rc %d' % run.returncode)

fwd_ops = ('TLBI_NH_ALL', 'TLBI_NH_ASID', 'TLBI_NH_VA', 'TLBI_NH_VAA',
           'TLBI_NSNH_ALL', 'CFGI_CD', 'CFGI_CD_ALL', 'ATC_INV')
fwd = sum(want.get('op_' + op, 0) for op in fwd_ops)
run = subprocess.run([tool, 'coalesce', '--window', '16', trace],
                     capture_output=True, text=True, timeout=120)
m = re.search(r'in=(\d+) out=(\d+) ioctls=(\d+)', run.stdout)
check('coalesce exits 0 and reports', run.returncode == 0 and m is not None,
      run.stdout + run.stderr)
if m:
    n_in, n_out, n_ioctls = (int(x) for x in m.groups())
    check('coalesce takes every forwarded command', n_in == fwd,
          'in %d, forwarded per stats.json %d' % (n_in, fwd))
    check('coalesce shortens', 0 < n_out < n_in, 'out %d' % n_out)
    check('coalesce ioctls >= ceil(out / 63)',
          n_ioctls >= (n_out + 62) // 63 and n_ioctls <= n_out,
          'ioctls %d' % n_ioctls)

print('TAP version 13')
finish()
