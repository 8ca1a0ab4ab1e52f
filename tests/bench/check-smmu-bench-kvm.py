#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# smmu-bench --vcpu kvm, briefly, as TAP (correctness, not speed): every
# mode on real vCPUs for the generators and a recorded trace, one and two
# vCPUs sharing a VM's command queue, with the sim oracle on. Checks what
# each run must show whatever the machine's speed: every PROD write
# arrived as an MMIO write exit, every guest CMD_SYNC cost exactly one
# CMDQ_CONS read exit (offload: the VMM waits on it), the guest counted
# what the VMM saw, one guest-measured round trip per SYNC, qemu made one
# ioctl per forwarded command, nothing stale. Without a usable /dev/kvm
# smmu-bench exits 77 and this test reports SKIP (a TAP "1..0 # SKIP").
# usage: check-smmu-bench-kvm.py SMMU_BENCH DATA_DIR
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'lib'))
from tap import check, finish  # noqa: E402

bench, data = sys.argv[1:3]
tmp = tempfile.mkdtemp(prefix='smmu-bench-kvm-test-')
MODES = ['qemu', 'qemu-batched', 'offload']
MODE_KEYS = {'mode', 'ok', 'error', 'wall_s', 'counts', 'exits_per_cmd',
             'exits_by_reason', 'guest_sync_ns', 'metrics', 'oracle'}
METRIC_KEYS = {'guest_blocked_ns_per_cmd', 'guest_lock_wait_ns_per_cmd',
               'exits_per_batch', 'handler_ns_per_cmd',
               'prod_exit_handler_ns', 'cons_exit_handler_ns',
               'prod_exit_handler_p50_ns', 'cons_exit_handler_p50_ns',
               'vcpu_cpu_ns_per_cmd',
               'service_cpu_ns_per_cmd', 'host_cpu_ns_per_cmd',
               'worker_sleeps_per_batch',
               'cmds_per_s_per_hsmmu', 'ioctls_per_1000_cmds'}


def run(name, args, vcpu='kvm'):
    path = os.path.join(tmp, name + '.json')
    p = subprocess.run([bench, '--vcpu', vcpu, '-q', '--json', path] + args,
                       capture_output=True, text=True, timeout=120)
    if p.returncode == 77:
        return 'skip', p.stderr.strip()
    ok = check(f'{name}: exit 0', p.returncode == 0,
               f'rc {p.returncode}\n{p.stdout}\n{p.stderr}')
    if not ok:
        return None, None
    with open(path) as f:
        return json.load(f), None


def check_run(name, j, vms, vcpus, k, msipoll=False):
    check(f'{name}: schema', j.get('schema') == 'smmu-bench-kvm/1' and
          j.get('vcpu') == 'kvm', str(j.get('schema')))
    by = {m['mode']: m for m in j['modes']}
    check(f'{name}: every mode ran', sorted(by) == sorted(MODES),
          str(sorted(by)))
    for mn, m in by.items():
        miss = sorted(MODE_KEYS - set(m)) + \
            sorted(METRIC_KEYS - set(m.get('metrics', {})))
        check(f'{name}/{mn}: keys present', not miss, str(miss))
        if miss:
            continue
        c, e, lat, o = m['counts'], m['exits_by_reason'], \
            m['guest_sync_ns'], m['oracle']
        check(f'{name}/{mn}: ok', m['ok'], str(m['error']))
        check(f'{name}/{mn}: {vms * vcpus * k} PROD writes',
              c['batches'] == vms * vcpus * k, str(c))
        check(f'{name}/{mn}: the guest counted what the VMM saw',
              c['guest_counted_batches'] == c['batches'] and
              c['guest_counted_cmds'] == c['guest_cmds'], str(c))
        check(f'{name}/{mn}: one MMIO write exit per PROD write',
              e['mmio_write'] == c['batches'] and e['other'] == 0, str(e))
        check(f'{name}/{mn}: one round trip measured per waited SYNC',
              lat['count'] > 0 and lat['count'] <= c['batches'] and
              lat['p50'] <= lat['p99'] <= lat['max'], str(lat))
        if msipoll:
            # The guest polls RAM; the queue never fills in these runs.
            check(f'{name}/{mn}: no CONS read exit, one MSI per SYNC',
                  e['mmio_read'] == 0 and
                  c['msi_writes'] == lat['count'], f'{e} {c} {lat}')
        else:
            check(f'{name}/{mn}: one CONS read exit per waited SYNC',
                  e['mmio_read'] == lat['count'] and c['msi_writes'] == 0,
                  f'{e} {c} {lat}')
        check(f'{name}/{mn}: exits_per_cmd adds up',
              abs(m['exits_per_cmd'] * c['guest_cmds'] -
                  (e['mmio_write'] + e['mmio_read'])) < 1, str(m))
        if mn == 'qemu':
            check(f'{name}/qemu: one ioctl per forwarded command',
                  c['ioctls'] == c['forwarded'], str(c))
        check(f'{name}/{mn}: oracle checked, nothing stale',
              o['enabled'] and o['stale'] == 0 and o['checked'] > 0, str(o))
        check(f'{name}/{mn}: service CPU and sleeps only for offload',
              (m['metrics']['service_cpu_ns_per_cmd'] is None) ==
              (mn != 'offload') and
              (m['metrics']['worker_sleeps_per_batch'] is None) ==
              (mn != 'offload'), str(m['metrics']))


trace = os.path.join(data, 'smmuv3-lazy-blk-nvme-net.trace.xz')
cases = [
    ('strict-2vms', ['-w', 'strict-unmap', '-n', '2', '-k', '40'], 2, 1, 40),
    ('strict-2vcpus', ['-w', 'strict-unmap', '-n', '1', '--vcpus', '2',
                       '-k', '40'], 1, 2, 40),
    ('lazy', ['-w', 'lazy-flush', '-n', '1', '-k', '40'], 1, 1, 40),
    ('storm', ['-w', 'storm', '-n', '1', '-k', '40'], 1, 1, 40),
    ('trace', ['-w', 'trace:' + trace, '-n', '1', '--vcpus', '2',
               '--trace-batches', '400', '-k', '60'], 1, 2, 60),
]
if len(os.sched_getaffinity(0)) >= 2:
    cases.append(('strict-pinned', ['-w', 'strict-unmap', '-n', '2', '-k',
                                    '40', '--kvm-pin'], 2, 1, 40))
# Linux's MSIPOLL: the SYNC's MSI write into its own slot, polled in RAM.
cases += [
    ('msipoll-2vms', ['-w', 'strict-unmap', '-n', '2', '-k', '40'], 2, 1, 40,
     'kvm-msipoll'),
    ('msipoll-2vcpus', ['-w', 'storm', '-n', '1', '--vcpus', '2', '-k',
                        '20'], 1, 2, 20, 'kvm-msipoll'),
]
for name, args, vms, vcpus, k, *vcpu in cases:
    j, why = run(name, args + ['-H', '2'], *vcpu)
    if j == 'skip':
        print(f'1..0 # SKIP smmu-bench --vcpu kvm: {why}')
        sys.exit(0)
    if j:
        check_run(name, j, vms, vcpus, k, msipoll=bool(vcpu))

p = subprocess.run([bench, '--vcpu', 'bogus'], capture_output=True)
check('--vcpu bogus: usage error', p.returncode == 2, str(p.returncode))
p = subprocess.run([bench, '--kvm-pin', '-k', '1'], capture_output=True)
check('--kvm-pin without --vcpu kvm: usage error', p.returncode == 2,
      str(p.returncode))

finish()
