#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Smoke runs of smmu-bench (correctness, not speed), as TAP: every mode
# and workload for a fraction of a second with the sim oracle on, the JSON
# checked against bench/SCHEMA.md and against what each mode must do
# (exact SYNC counts in --syncs mode, one ioctl per forwarded command for
# qemu, one per batch for qemu-batched, never more for offload), both repo
# traces replayed, and the oracle proven live by the --fault-drop hook.
# With SMMU_OFFLOADD, also the offload mode through the daemon
# (--connect): real processes, the ring memfds and eventfds passed over
# the control socket.
# usage: check-smmu-bench.py SMMU_BENCH DATA_DIR [SMMU_OFFLOADD]
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'lib'))
from tap import check, finish, skip  # noqa: E402

bench, data = sys.argv[1:3]
daemon = sys.argv[3] if len(sys.argv) > 3 else None
tmp = tempfile.mkdtemp(prefix='smmu-bench-test-')

MODES = ['qemu', 'qemu-batched', 'offload']
TOP_KEYS = {'schema', 'version', 'summary', 'machine', 'config', 'trace',
            'modes', 'ratios_qemu_over_offload'}
HEADLINE = 'guest_blocked_ns_per_cmd'
SUMMARY_KEYS = {HEADLINE, 'headline', 'basis', 'comparable', 'basis_note',
                'guest_blocked_qemu_over_offload',
                'guest_blocked_model_ns_per_cmd',
                'vcpu_thread_held_ns_per_cmd'}
MACHINE_KEYS = {'nproc', 'sysname', 'release', 'kernel_version', 'arch'}
CONFIG_KEYS = {'workload', 'vms', 'vcpus_per_vm', 'hsmmus',
               'producer_threads', 'duration_s', 'syncs_per_vcpu', 'seed',
               'verify', 'backend', 'sim', 'offload', 'timer_slack_ns',
               'vsmmus_per_vm', 'devices_per_vsmmu', 'load', 'rate_per_vm',
               'connect', 'flood_vms', 'sim_sleep_overshoot_ns', 'producer'}
MODE_KEYS = {'mode', 'ok', 'error', 'layout', 'threads', 'hsmmus_used',
             'loop', 'wall_s',
             'counts', 'service_stats', 'metrics', 'latency_ns', 'oracle',
             'open_loop', 'flood'}
FLOOD_KEYS = {'vms', 'cmds', 'syncs', 'cmds_per_s'}
OPEN_KEYS = {'offered_per_s', 'achieved_per_s', 'scheduled',
             'start_lag_ns_mean'}
COUNT_KEYS = {'guest_cmds', 'guest_syncs', 'forwarded', 'batches',
              'waited_syncs', 'ioctls', 'host_cmds', 'host_syncs',
              'backend_errors'}
METRIC_KEYS = {HEADLINE, 'guest_blocked_model_ns_per_cmd',
               'cmds_per_s_per_hsmmu', 'handler_ns_per_cmd',
               'handler_model_ns_per_cmd', 'sync_wait_ns_per_cmd',
               'ioctls_per_1000_cmds', 'host_syncs_per_1000_cmds',
               'p50_ns', 'p90_ns', 'p99_ns', 'p999_ns', 'max_ns',
               'caller_charged_ns_per_cmd', 'host_queue_busy_pct',
               'producer_cpu_ns_per_cmd', 'service_cpu_ns_per_cmd',
               'process_cpu_ns_per_cmd', 'ctx_voluntary', 'ctx_involuntary'}
LAT_KEYS = {'count', 'mean', 'min', 'p50', 'p90', 'p99', 'p999', 'max'}


def run(name, args, want_rc=0):
    path = os.path.join(tmp, name + '.json')
    p = subprocess.run([bench, '-q', '--json', path] + args,
                       capture_output=True, text=True, timeout=120)
    ok = check(f'{name}: exit {want_rc}', p.returncode == want_rc,
               f'rc {p.returncode}\n{p.stdout}\n{p.stderr}')
    if not ok or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        check(f'{name}: JSON parses', False, str(e))
        return None


def missing(d, keys):
    return sorted(keys - set(d)) if isinstance(d, dict) else ['not a dict']


def check_schema(name, j):
    bad = missing(j, TOP_KEYS) + missing(j.get('machine'), MACHINE_KEYS) + \
        missing(j.get('config'), CONFIG_KEYS)
    open_loop = j.get('config', {}).get('load') != 'closed'
    for m in j.get('modes', []):
        bad += missing(m, MODE_KEYS) + missing(m.get('counts'), COUNT_KEYS) \
            + missing(m.get('metrics'), METRIC_KEYS) + \
            missing(m.get('latency_ns'), LAT_KEYS)
        if open_loop:
            bad += missing(m.get('open_loop'), OPEN_KEYS)
        elif m.get('open_loop') is not None:
            bad += ['open_loop not null in closed loop']
        if j.get('config', {}).get('flood_vms'):
            bad += missing(m.get('flood'), FLOOD_KEYS)
        elif m.get('flood') is not None:
            bad += ['flood not null without --flood']
    bad += missing(j.get('summary'), SUMMARY_KEYS)
    check(f'{name}: schema keys present', not bad and
          j.get('schema') == 'smmu-bench/1', f'missing {bad}')
    check_headline(name, j)


def check_headline(name, j):
    # The headline leads the summary and every mode's metrics, says its
    # clock, and repeats the modes' own values.
    sm, cf = j['summary'], j['config']
    sleeps = cf['backend'] == 'sim' and cf['sim']['wait'] == 'block'
    check(f'{name}: summary leads with the guest-blocked headline',
          next(iter(sm)) == HEADLINE and sm['headline'] == HEADLINE and
          sm['basis'] == 'wall' and all(
              next(iter(m['metrics'])) == HEADLINE for m in j['modes']),
          str(sm))
    check(f'{name}: wall clock marked not comparable exactly under sim '
          f'block, with the measured sleep overshoot',
          sm['comparable'] is not sleeps and
          (isinstance(cf['sim_sleep_overshoot_ns'], int) if sleeps
           else cf['sim_sleep_overshoot_ns'] is None), f'{sm} {cf}')
    by = {m['mode']: m for m in j['modes'] if m['ok']}
    check(f'{name}: summary values are the modes\' metrics',
          all(sm[HEADLINE][mn] == by[mn]['metrics'][HEADLINE] and
              sm['vcpu_thread_held_ns_per_cmd'][mn] ==
              by[mn]['metrics']['handler_ns_per_cmd'] for mn in by) and
          all(sm[HEADLINE][mn] is None for mn in MODES if mn not in by),
          str(sm))
    q, o = by.get('qemu'), by.get('offload')
    r = j['ratios_qemu_over_offload']
    if q and o and o['metrics'][HEADLINE] > 0:
        want = q['metrics'][HEADLINE] / o['metrics'][HEADLINE]
        check(f'{name}: headline ratio qemu / offload',
              abs(sm['guest_blocked_qemu_over_offload'] - want) <=
              1e-3 * want + 1e-4 and HEADLINE in r and
              'guest_blocked_model_ns_per_cmd' not in r, f'{sm} {r}')


def check_blocked(name, j, m):
    # Relations of the headline that hold by construction: the guest is
    # blocked at least while its vCPU thread is held (and, closed loop, at
    # least for its SYNC wait); in the qemu modes the SYNC completes in the
    # trap, so blocked = held, and the cost model is the sim's charge;
    # offload's ring path has no model. Throughput is per host SMMU that
    # carried traffic (VM v on host SMMU v % hsmmus).
    mt, cf = m['metrics'], j['config']
    b, held = mt[HEADLINE], mt['handler_ns_per_cmd']
    closed = cf['load'] == 'closed'
    check(f'{name}: guest blocked >= vCPU thread held'
          f'{" and >= SYNC wait" if closed else ""}',
          b >= held > 0 and (not closed or b >= mt['sync_wait_ns_per_cmd']),
          str(mt))
    if m['mode'] == 'offload':
        check(f'{name}: offload has no modelled blocked time',
              mt['guest_blocked_model_ns_per_cmd'] is None, str(mt))
    else:
        check(f'{name}: qemu modes: blocked = held, model = sim charge',
              b == held and mt['guest_blocked_model_ns_per_cmd'] ==
              mt['caller_charged_ns_per_cmd'], str(mt))
    used = min(cf['vms'] * cf['vsmmus_per_vm'], cf['hsmmus'])
    # wall_s is printed to 1 us: bound the quotient, do not recompute it.
    n, w = m['counts']['guest_cmds'], m['wall_s']
    lo = n / (w + 1e-6) / used
    hi = n / (w - 1e-6) / used if w > 1e-6 else float('inf')
    check(f'{name}: throughput over the {used} host SMMU(s) used',
          m['hsmmus_used'] == used and
          # the rate itself is printed to 3 decimals: 0.0005 either way
          lo * (1 - 1e-6) - 5e-4 <= mt['cmds_per_s_per_hsmmu'] <=
          hi * (1 + 1e-6) + 5e-4,
          f"{m['hsmmus_used']} {mt['cmds_per_s_per_hsmmu']} {lo} {hi}")


def check_modes(name, j, vms, vcpus, syncs, verify=True, modes=MODES,
                checked_frac=1.0, ordered=False):
    # ordered: batches hold CFGI_CD; SYNC; TLBI; SYNC, an ordering point
    # that splits an ioctl, so the bound is one ioctl per SYNC.
    by = {m['mode']: m for m in j['modes']}
    check(f'{name}: modes {modes} ran', sorted(by) == sorted(modes),
          str(sorted(by)))
    for mn in modes:
        m = by.get(mn)
        if not m:
            continue
        c, o, lat = m['counts'], m['oracle'], m['latency_ns']
        check(f'{name}/{mn}: ok', m['ok'], str(m['error']))
        if m['ok']:
            check_blocked(f'{name}/{mn}', j, m)
        check(f'{name}/{mn}: {vms * vcpus * syncs} SYNCs waited',
              c['waited_syncs'] == vms * vcpus * syncs, str(c))
        check(f'{name}/{mn}: one latency sample per waited SYNC',
              lat['count'] == c['waited_syncs'] and
              lat['p50'] <= lat['p99'] <= lat['max'], str(lat))
        check(f'{name}/{mn}: every forwarded command reached the host',
              c['host_cmds'] <= c['forwarded'] and c['host_cmds'] > 0 and
              c['backend_errors'] == 0, str(c))
        check(f'{name}/{mn}: a host CMD_SYNC per ioctl at least',
              c['host_syncs'] >= c['ioctls'] > 0, str(c))
        # offload: the service's own counters, one object per host SMMU;
        # their backend calls add up to the mode's count.
        ss = m['service_stats']
        if mn == 'offload' and not j['config'].get('connect'):
            check(f'{name}/offload: service_stats per host SMMU',
                  isinstance(ss, list) and len(ss) > 0 and
                  all('passes' in h and 'backend_ioctls' in h for h in ss)
                  and sum(h['backend_ioctls'] for h in ss) == c['ioctls'],
                  str(ss)[:300])
        elif mn.startswith('qemu'):
            check(f'{name}/{mn}: no service_stats', ss is None, str(ss))
        if mn == 'qemu':
            check(f'{name}/qemu: one ioctl per forwarded command',
                  c['ioctls'] == c['forwarded'], str(c))
        elif mn == 'qemu-batched':
            bound = c['guest_syncs'] if ordered else c['batches']
            check(f'{name}/qemu-batched: at most one ioctl per '
                  f'{"SYNC" if ordered else "batch"}',
                  c['ioctls'] <= bound, str(c))
        else:
            bound = c['guest_syncs'] if ordered else c['batches']
            check(f'{name}/offload: no more ioctls than qemu-batched',
                  c['ioctls'] <= bound, str(c))
            check(f'{name}/offload: service CPU measured',
                  m['metrics']['service_cpu_ns_per_cmd'] is not None, '')
        if verify:
            check(f'{name}/{mn}: oracle checked, nothing stale',
                  o['enabled'] and o['stale'] == 0 and o['checked'] > 0 and
                  o['checked'] >= checked_frac * c['waited_syncs'], str(o))
        else:
            check(f'{name}/{mn}: oracle off', not o['enabled'], str(o))


# 1. Every generated workload, every mode, sim with the oracle.
for wl in ['strict-unmap', 'lazy-flush', 'mixed', 'storm']:
    extra = ['--devices', '3'] if wl == 'storm' else []
    j = run(wl, ['-w', wl, '-n', '4', '--vcpus', '2', '-H', '2', '-k', '40']
            + extra)
    if j:
        check_schema(wl, j)
        check_modes(wl, j, 4, 2, 40, ordered=wl in ('mixed', 'storm'))
        if wl == 'storm':
            by = {m['mode']: m for m in j['modes']}
            c = by['qemu-batched']['counts']
            # Per teardown: CFGI_CD; SYNC; TLBI_NH_ASID; SYNC.
            check('storm: 4 commands, 2 forwarded per batch',
                  all(m['counts']['guest_cmds'] ==
                      4 * m['counts']['batches'] and
                      m['counts']['forwarded'] ==
                      2 * m['counts']['batches'] for m in by.values()), '')
            check('storm: qemu-batched keeps the CFG/TLB ordering point '
                  '(2 ioctls per teardown)',
                  c['ioctls'] == 2 * c['batches'], str(c))
            c = by['offload']['counts']
            check('storm: offload keeps the CFG/TLB ordering point '
                  '(no ioctl holds both classes of one teardown)',
                  c['ioctls'] >= c['batches'], str(c))
            check('storm: CD and TLB entries checked (2 per SYNC group)',
                  all(m['oracle']['checked'] ==
                      2 * m['counts']['waited_syncs']
                      for m in by.values()),
                  str([m['oracle'] for m in by.values()]))
            check('storm: devices in the config',
                  j['config']['devices_per_vsmmu'] == 3, str(j['config']))
        if wl == 'strict-unmap':
            by = {m['mode']: m for m in j['modes']}
            check('strict-unmap: 2 guest commands per batch',
                  all(m['counts']['guest_cmds'] ==
                      2 * m['counts']['batches'] for m in by.values()), '')
            check('strict-unmap: ratios present',
                  isinstance(j['ratios_qemu_over_offload'], dict), '')

# 2. The service's other issue mode and event loop; the null backend.
j = run('inline-epoll', ['-m', 'offload', '--issue', 'inline', '--loop',
                         'epoll', '-n', '3', '--vcpus', '3', '-k', '50'])
if j:
    check_modes('inline-epoll', j, 3, 3, 50, modes=['offload'])
    check('inline-epoll: loop reported', j['modes'][0]['loop'] == 'epoll',
          str(j['modes'][0]['loop']))
# The daemon's names for service settings (core_config_set()) work here
# too, with the daemon's spelling of the loop.
j = run('daemon-names', ['-m', 'offload', '--issue-mode', 'async',
                         '--loop', 'io_uring', '--max-inflight', '2',
                         '--rate-limit', '1000000', '--ring-budget', '32',
                         '-n', '2', '-k', '20'])
if j:
    cf = j['config']['offload']
    check('daemon-names: settings reach the service',
          cf['issue_mode'] == 'async' and cf['loop'] == 'io_uring' and
          cf['max_inflight'] == 2 and cf['rate_cmds'] == 1000000, str(cf))
run('bad-service-setting', ['-m', 'offload', '--max-inflight', '257',
                            '-n', '1', '-k', '1'], want_rc=2)
j = run('null', ['-b', 'null', '-n', '4', '-k', '100'])
if j:
    check_schema('null', j)
    check_modes('null', j, 4, 1, 100, verify=False)
# --producer stream (the worker's ceiling, issue 16): one producer per
# ring keeps it full; completed commands counted from CONS, a CMD_SYNC as
# every Nth entry, -k timed SYNCs per ring. Counts only, no timing.
for name, args, every, batch in [
        ('stream-null-inline', ['-b', 'null', '--issue', 'inline',
                                '--ring-budget', '16'], 2, 16),
        ('stream-null-async', ['-b', 'null', '--issue', 'async',
                               '--stream-sync-every', '5'], 5, 64),
        ('stream-sim', ['--wait', 'spin', '-H', '1',
                        '--stream-batch', '24'], 2, 24)]:
    j = run(name, ['-m', 'offload', '--producer', 'stream', '-n', '2',
                   '-k', '30'] + args)
    if not j:
        continue
    check_schema(name, j)
    m, pc = j['modes'][0], j['config']['producer']
    c, lat, o = m['counts'], m['latency_ns'], m['oracle']
    n = c['guest_cmds']
    check(f'{name}: ok, one streaming producer per ring',
          m['ok'] and m['threads'] == 2 and pc == {
              'kind': 'stream', 'batch': batch, 'sync_every': every},
          f"{m['error']} {m['threads']} {pc}")
    check(f'{name}: commands completed, a SYNC every {every} of them',
          n > 0 and c['guest_syncs'] * every <= n <
          (c['guest_syncs'] + 2) * every and
          c['forwarded'] == n - c['guest_syncs'], str(c))
    check(f'{name}: no more completed than pushed',
          c['batches'] * batch >= n, str(c))
    check(f'{name}: 30 timed SYNCs per ring, one latency sample each',
          c['waited_syncs'] == 60 and lat['count'] == 60 and
          lat['p50'] <= lat['p99'] <= lat['max'], f'{c} {lat}')
    check(f'{name}: reached the backend, no errors, oracle off',
          c['ioctls'] > 0 and c['host_cmds'] > 0 and
          c['backend_errors'] == 0 and not o['enabled'] and
          m['metrics'][HEADLINE] is None, f'{c} {o}')
run('stream-needs-offload', ['--producer', 'stream', '-n', '1', '-k', '1'],
    want_rc=2)
j = run('closed-producer', ['-m', 'offload', '-n', '1', '-k', '5'])
if j:
    check('closed-producer: config says closed',
          j['config']['producer']['kind'] == 'closed', str(j['config']))
# A ceiling run: one VM uses one of the two host SMMUs; spin: the wall
# clock is a fair basis.
j = run('one-vm', ['-n', '1', '--vcpus', '3', '-H', '2', '--wait', 'spin',
                   '-k', '50'])
if j:
    check_schema('one-vm', j)
    check_modes('one-vm', j, 1, 3, 50)

# 3. Both recorded guest traces, replayed batch by batch over VMs.
for t in ['strict', 'lazy']:
    f = os.path.join(data, f'smmuv3-{t}-blk-nvme-net.trace.xz')
    name = f'trace-{t}'
    j = run(name, ['-w', 'trace:' + f, '--trace-batches', '3000', '-n', '3',
                   '--vcpus', '2', '-k', '150'])
    if j:
        check_schema(name, j)
        # A trace batch holding only a CMD_SYNC has nothing to check.
        check_modes(name, j, 3, 2, 150, checked_frac=0.8)
        tr = j['trace']
        check(f'{name}: at most 3000 batches loaded, VMM-only skipped',
              tr and 0 < tr['batches'] <= 3000 and tr['skipped'] > 0,
              str(tr))

# 3a. A trace with PROD writes that hold no CMD_SYNC: the guest passes
# them once the write returns; every relation of the headline still holds.
nosync = os.path.join(tmp, 'nosync.trace')
with open(nosync, 'w') as f:
    f.write('# smmuv3-cmdq-trace v1\n'
            'BATCH n=1 t_us=0 cpu=0 cons=0 prod=1\nTLBI_NH_ASID asid=1\n'
            'BATCH n=2 t_us=1 cpu=0 cons=1 prod=3\nTLBI_NH_ASID asid=2\n'
            'SYNC\n'
            'BATCH n=1 t_us=2 cpu=0 cons=3 prod=4\nTLBI_NH_ASID asid=3\n'
            'BATCH n=2 t_us=3 cpu=0 cons=4 prod=6\nTLBI_NH_ASID asid=1\n'
            'SYNC\n')
j = run('trace-nosync', ['-w', 'trace:' + nosync, '-n', '2', '--vcpus', '2',
                         '-k', '30'])
if j:
    check_schema('trace-nosync', j)
    check_modes('trace-nosync', j, 2, 2, 30)
    check('trace-nosync: writes without a SYNC replayed in every mode',
          all(m['counts']['batches'] > m['counts']['waited_syncs']
              for m in j['modes']), str([m['counts'] for m in j['modes']]))

# 3b. Open loop: a fixed schedule with --syncs (exact counts), a Poisson
# one for a duration; topology: two vSMMUs per VM.
j = run('open-storm', ['-w', 'storm', '--rate', '400', '--arrival', 'fixed',
                       '-n', '3', '--vcpus', '2', '--devices', '2', '-k',
                       '20'])
if j:
    check_schema('open-storm', j)
    check_modes('open-storm', j, 3, 2, 20, ordered=True)
    check('open-storm: load open-fixed, rate in the config',
          j['config']['load'] == 'open-fixed' and
          j['config']['rate_per_vm'] == 400, str(j['config']))
    # A count, not a timing: every batch took a slot on the schedule
    # (late or not; lateness is start_lag_ns_mean, a measurement).
    check('open-storm: every batch was an open-loop (scheduled) start',
          all(m['open_loop']['scheduled'] == m['counts']['batches']
              for m in j['modes']), str([m['open_loop'] for m in j['modes']]))
j = run('open-poisson', ['--rate', '1000', '-d', '0.4', '-n', '4',
                         '--vcpus', '2'])
if j:
    check_schema('open-poisson', j)
    for m in j['modes']:
        ol, c, o = m['open_loop'], m['counts'], m['oracle']
        check(f"open-poisson/{m['mode']}: offered 4000/s, achieved > 0 "
              f"and not above it", ol['offered_per_s'] == 4000 and
              0 < ol['achieved_per_s'] <= 1.25 * ol['offered_per_s'],
              str(ol))
        check(f"open-poisson/{m['mode']}: oracle clean",
              m['ok'] and o['enabled'] and o['stale'] == 0 and
              o['checked'] > 0, str(o))
j = run('vsmmus', ['-n', '2', '--vsmmus-per-vm', '2', '--vcpus', '2',
                   '-k', '20'])
if j:
    check_modes('vsmmus', j, 4, 2, 20)
    check('vsmmus: 2 vSMMUs per VM in the config',
          j['config']['vsmmus_per_vm'] == 2, str(j['config']))

# 3c. Noisy neighbour: a flooding VM on the same host SMMU. The measured
# VMs' counts and latencies must not include the flood (exact SYNC
# counts, 2 commands per strict-unmap batch), the oracle stays clean, and
# the flood itself ran in every mode (offload: batches of 32 TLBI_NH_ASID,
# a SYNC after every 8th; qemu modes: no SYNC). The measured VMs start
# only after each flooder published a batch (smmu-bench's start barrier),
# so at least one batch is in the flood count however the threads ran.
j = run('flood', ['-n', '3', '-H', '1', '--flood', '1', '-k', '30'])
if j:
    check_schema('flood', j)
    check('flood: flood_vms in the config', j['config']['flood_vms'] == 1,
          str(j['config']))
    check('flood: every mode ran', sorted(m['mode'] for m in j['modes']) ==
          sorted(MODES), '')
    for m in j['modes']:
        c, o, f = m['counts'], m['oracle'], m['flood']
        check(f"flood/{m['mode']}: ok, 90 SYNCs waited, flood not counted",
              m['ok'] and c['waited_syncs'] == 90 and
              m['latency_ns']['count'] == 90 and c['batches'] == 90 and
              c['guest_cmds'] == 180, f"{m['error']} {c}")
        check(f"flood/{m['mode']}: oracle on, nothing stale",
              o['enabled'] and o['checked'] > 0 and o['stale'] == 0, str(o))
        check(f"flood/{m['mode']}: the flooder published a batch before "
              f"the measured VMs started",
              f['vms'] == 1 and f['cmds'] >= 32 and f['cmds_per_s'] > 0 and
              f['syncs'] == (f['cmds'] // (8 * 32 + 1)
                             if m['mode'] == 'offload' else 0), str(f))
j = run('noisy', ['-w', 'noisy', '-m', 'offload', '-k', '3'])
if j:
    check_schema('noisy', j)
    cf, m = j['config'], j['modes'][0]
    check('noisy: 63 strict-unmap VMs + 1 flooder on one host SMMU',
          cf['workload'] == 'strict-unmap' and cf['vms'] == 63 and
          cf['hsmmus'] == 1 and cf['flood_vms'] == 1, str(cf))
    check('noisy/offload: ok, 189 SYNCs, oracle clean',
          m['ok'] and m['counts']['waited_syncs'] == 189 and
          m['oracle']['stale'] == 0 and m['oracle']['checked'] > 0,
          f"{m['error']} {m['oracle']}")

# 4. Duration mode and plot files.
plot = os.path.join(tmp, 'plots')
os.mkdir(plot)
j = run('duration', ['-d', '0.3', '-n', '2', '--plot', plot])
if j:
    check('duration: commands in every mode',
          all(m['counts']['guest_cmds'] > 0 for m in j['modes']), '')
    check('duration: plot data written',
          os.path.exists(os.path.join(plot, 'latency-cdf.dat')) and
          os.path.exists(os.path.join(plot, 'plots.gp')), '')

# 5. The oracle is live: a VMM that loses commands is caught, exit 1.
j = run('fault-drop', ['-n', '2', '--vcpus', '2', '-k', '50',
                       '--fault-drop', '5'], want_rc=1)
if j:
    for m in j['modes']:
        o = m['oracle']
        check(f"fault-drop/{m['mode']}: lost commands found stale",
              o['dropped_by_fault_hook'] > 0 and o['stale'] > 0, str(o))

# 6. Through smmu-offloadd: start it on a temp socket, wait for its
# systemd-style READY=1, run offload with --connect, stop it.
if daemon:
    sock = os.path.join(tmp, 'd.sock')
    notify = os.path.join(tmp, 'notify')
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(notify)
    ns.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    d = subprocess.Popen([daemon, '--backend', 'sim', '--sim-smmus', '2',
                          '--socket', sock, '--log-level', 'warning'],
                         env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        ready = ns.recv(4096).decode()
    except socket.timeout:
        ready = ''
    if check('daemon: READY=1', 'READY=1' in ready, ready):
        j = run('connect', ['-m', 'offload', '--connect', sock, '-n', '3',
                            '--vcpus', '2', '-k', '50'])
        if j:
            m = j['modes'][0]
            c = m['counts']
            check('connect: offload ok through the daemon', m['ok'] and
                  c['waited_syncs'] == 3 * 2 * 50 and
                  'smmu-offloadd' in m['layout'], str(m))
            check('connect: daemon counters read', c['ioctls'] > 0 and
                  c['host_cmds'] > 0 and
                  m['metrics']['service_cpu_ns_per_cmd'] is not None,
                  str(c))
            check('connect: oracle marked not reachable',
                  not m['oracle']['enabled'], str(m['oracle']))
            check('connect: socket in the config',
                  j['config']['connect'] == sock, str(j['config']))
        # storm through the daemon: its CFGI_CDs name devices attached
        # over the control socket; open loop, fixed arrivals.
        j = run('connect-storm', ['-m', 'offload', '--connect', sock,
                                  '-w', 'storm', '--devices', '3',
                                  '--rate', '300', '--arrival', 'fixed',
                                  '-n', '2', '--vcpus', '2', '-k', '20'])
        if j:
            m = j['modes'][0]
            c = m['counts']
            check('connect-storm: every teardown completed, CFG and TLB '
                  'in separate ioctls', m['ok'] and
                  c['waited_syncs'] == 2 * 2 * 20 and
                  c['ioctls'] >= c['batches'] and
                  c['backend_errors'] == 0, str(m))
        j = run('connect-backend-mismatch', ['-m', 'offload', '-b', 'null',
                                             '--connect', sock, '-k', '5'],
                want_rc=1)
    d.send_signal(signal.SIGTERM)
    try:
        rc = d.wait(timeout=30)
    except subprocess.TimeoutExpired:
        d.kill()
        rc = d.wait()
    check('daemon: clean exit after SIGTERM', rc == 0, d.stderr.read())
    ns.close()
else:
    skip('through smmu-offloadd (--connect)', 'no SMMU_OFFLOADD argument')

# 7. Usage errors.
for args in (['-w', 'nope'], ['-n', '0'], ['-m', 'qemu,foo'],
             ['-w', 'trace:/nonexistent.trace'], ['--rate', '0'],
             ['--arrival', 'bursty'], ['--devices', '17'],
             ['-n', '200', '--vsmmus-per-vm', '2'],
             ['-w', 'trace:' + os.path.join(
                 data, 'smmuv3-strict-blk-nvme-net.trace.xz'),
              '--devices', '2'],
             ['--producer', 'open'],
             ['-m', 'offload', '--producer', 'stream', '--rate', '100'],
             ['-m', 'offload', '--producer', 'stream', '--stream-batch',
              '600'],
             ['-m', 'offload', '--producer', 'stream',
              '--stream-sync-every', '0']):
    p = subprocess.run([bench] + args, capture_output=True, timeout=30)
    check(f'usage error {args}: exit 2', p.returncode == 2,
          f'rc {p.returncode}')

finish()
