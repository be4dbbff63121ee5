#!/usr/bin/env python3
"""Compares two run directories: every tensor of last/best.safetensors byte for byte, the
best checkpoint's epoch and score, and metrics.csv without its images_per_s column (a timing).
Usage: compare_runs.py RUN_A RUN_B; exits 1 on a difference."""
import json, struct, sys, csv, os
def tensors(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8+n]); meta = h.pop('__metadata__', {})
    d = 8 + n
    return {k: b[d+v['data_offsets'][0]:d+v['data_offsets'][1]] for k, v in h.items()}, meta
def rows(p):
    r = list(csv.reader(open(p)))
    i = r[0].index('images_per_s')
    return [x[:i] + x[i+1:] for x in r]
a, b = sys.argv[1], sys.argv[2]
bad = 0
for f in ['last.safetensors', 'best.safetensors']:
    ta, ma = tensors(os.path.join(a, f)); tb, mb = tensors(os.path.join(b, f))
    if set(ta) != set(tb):
        print(f, 'tensor names differ', sorted(set(ta) ^ set(tb))[:5]); bad += 1; continue
    diff = [k for k in ta if ta[k] != tb[k]]
    print(f"{f}: {len(ta)} tensors, {len(diff)} differ" + (f" e.g. {diff[:3]}" if diff else ""))
    bad += bool(diff)
    for k in ['epoch', 'val_ap', 'val_top1']:
        if k in ma and ma.get(k) != mb.get(k): print(f, 'metadata', k, ma.get(k), mb.get(k)); bad += 1
ra, rb = rows(os.path.join(a, 'metrics.csv')), rows(os.path.join(b, 'metrics.csv'))
print(f"metrics.csv: {len(ra)-1} vs {len(rb)-1} rows, " + ("identical (images_per_s aside)" if ra == rb else "DIFFER"))
if ra != rb:
    bad += 1
    for x, y in zip(ra, rb):
        if x != y: print(' ', x, '\n ', y); break
sys.exit(1 if bad else 0)
