#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Helpers of scripts/perf-issue16.sh and scripts/perf-compare.sh (not a
# test): read smmu-bench JSON (bench/SCHEMA.md), and print tables of
# medians from the scripts' raw TSV.
#
#   perf-json.py get FILE MODE KEY...   one line: the values of KEY (looked
#                                       up in the mode's metrics, counts,
#                                       oracle, then the mode itself),
#                                       tab-separated; "null" for null
#   perf-json.py median TSV [COL BASE]  TSV lines "row<TAB>column<TAB>value":
#                                       one markdown table, median per cell
#                                       with the range in brackets when
#                                       there are several values; with COL
#                                       and BASE one more column: the
#                                       median of COL over that of the row
#                                       "BASE @ K", for each row "X @ K"
#   perf-json.py compare TSV            the same table with one more
#                                       column: the last column's median
#                                       over the first's (after / before)
import json
import statistics
import sys


def get(path, mode, keys):
    with open(path) as f:
        j = json.load(f)
    by = {m['mode']: m for m in j['modes']}
    m = by[mode]
    out = []
    for k in keys:
        v = None
        for d in (m.get('metrics'), m.get('counts'), m.get('oracle'), m):
            if isinstance(d, dict) and k in d:
                v = d[k]
                break
        out.append('null' if v is None else str(v))
    print('\t'.join(out))


def fmt(v):
    if v >= 100:
        return f'{v:.0f}'
    if v >= 10:
        return f'{v:.1f}'
    return f'{v:.2f}'


def median(path, ratio=None, cmp=False):
    rows, cols, cells = [], [], {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) != 3:
                continue
            r, c, v = parts
            if r not in rows:
                rows.append(r)
            if c not in cols:
                cols.append(c)
            if v != 'null':
                cells.setdefault((r, c), []).append(float(v))
    extra = [f'{ratio[0]} / {ratio[1]}'] if ratio else []
    if cmp:
        extra = [f'{cols[-1]} / {cols[0]}']
    print('| | ' + ' | '.join(cols + extra) + ' |')
    print('|---|' + '---:|' * len(cols + extra))
    for r in rows:
        out = []
        if ratio:
            base = ratio[1] + ' @ ' + r.rsplit(' @ ', 1)[-1]
            a, b = cells.get((r, ratio[0])), cells.get((base, ratio[0]))
            extra = [f'{statistics.median(a) / statistics.median(b):.3f}'
                     if a and b and statistics.median(b) else '-']
        for c in cols:
            v = cells.get((r, c))
            if not v:
                out.append('-')
            elif len(v) == 1:
                out.append(fmt(v[0]))
            else:
                out.append(f'{fmt(statistics.median(v))} '
                           f'({fmt(min(v))}-{fmt(max(v))})')
        if cmp:
            a, b = cells.get((r, cols[-1])), cells.get((r, cols[0]))
            extra = [f'{statistics.median(a) / statistics.median(b):.3f}'
                     if a and b and statistics.median(b) else '-']
        print(f'| {r} | ' + ' | '.join(out + extra) + ' |')


if __name__ == '__main__':
    if len(sys.argv) >= 5 and sys.argv[1] == 'get':
        get(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) in (3, 5) and sys.argv[1] == 'median':
        median(sys.argv[2], sys.argv[3:5] if len(sys.argv) == 5 else None)
    elif len(sys.argv) == 3 and sys.argv[1] == 'compare':
        median(sys.argv[2], cmp=True)
    else:
        sys.exit(__doc__ or 'usage: perf-json.py get|median ...')
