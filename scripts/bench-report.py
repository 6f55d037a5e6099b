#!/usr/bin/env python3
"""make bench: turn the KVMI-BENCH lines of kvmi_bench (DIR/raw.jsonl) into
DIR/results.json, the table on stdout, and the gnuplot data files
DIR/ratios.dat and DIR/p2.dat (scripts/bench.gnuplot plots them)."""
import argparse
import datetime
import json
import os
import re

ap = argparse.ArgumentParser()
ap.add_argument("dir")
for opt in ("host-cpu", "host-cpus", "load-before", "load-after", "qemu",
            "kernel", "guest-cpus", "wall"):
    ap.add_argument("--" + opt, default="")
a = ap.parse_args()

figs = {}
config = {}
with open(os.path.join(a.dir, "raw.jsonl")) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        # A C printf of a NaN or infinity is no JSON: make it null.
        r = json.loads(re.sub(r"(?<=[:,\[ ])-?(nan|inf)\b", "null", line))
        if r["id"] == "config":
            config = r
        elif r["id"] != "done":
            figs[r["id"]] = r

# What each ratio means, in the order of the table and of the bar chart.
RATIOS = [
    ("p1.ratio", "P1 HYPERCALL events/s / ucalls/s"),
    ("p1.pause_ratio", "P1 PAUSE events/s / ucalls/s"),
    ("p1.pf_ratio", "P1 PF events/s / ucalls/s"),
    ("p2.ratio.8", "P2 READ_PHYSICAL / process_vm_readv, 8 B"),
    ("p2.ratio.4096", "P2 READ_PHYSICAL / process_vm_readv, 4 KiB"),
    ("p3.ratio", "P3 compute time hooked / unhooked (<= 1.01)"),
    ("p3.ratio_nokvmi", "P3 compute time KVMI=y / KVMI=n"),
    ("p3.ucall_ratio", "P3 ucalls/s hooked / unhooked"),
    ("p4.ratio_paused", "P4 GET_REGISTERS/s paused / KVM_GET_REGS/s"),
    ("p4.ratio_in_event", "P4 GET_REGISTERS/s in event / KVM_GET_REGS/s"),
    ("p4.ratio_running", "P4 GET_REGISTERS/s running / KVM_GET_REGS/s"),
]
# P3 with CONFIG_KVM_INTROSPECTION=n needs a second kernel: not built.
figs.setdefault("p3.ratio_nokvmi", {"id": "p3.ratio_nokvmi", "unit": "ratio",
                                    "na": "no CONFIG_KVM_INTROSPECTION=n bench kernel is built"})

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
results = {
    "date": now,
    "machine": {
        "host_cpu": a.host_cpu, "host_cpus": a.host_cpus,
        "load_before": a.load_before, "load_after": a.load_after,
        "emulator": a.qemu + " (TCG, -cpu max: AMD SVM with NPT)",
        "guest_kernel": a.kernel + " (scripts/config/bench.config, no debugging)",
        "guest_cpus": a.guest_cpus,
    },
    "method": {
        "runs": config.get("runs"), "target_ms": config.get("target_ms"),
        "note": "each figure is measured 'runs' times, interleaved with its floor, "
                "each run over about target_ms; ratios are computed run by run",
    },
    "wall_seconds": int(a.wall) if a.wall else None,
    "figures": figs,
}
with open(os.path.join(a.dir, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=False)
    f.write("\n")


def fmt(v):
    if not isinstance(v, (int, float)):
        return "n/a"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def row(name, r, unit=None):
    if "na" in r:
        print("%-46s %12s %12s %12s  %s" % (name, "n/a", "n/a", "n/a", r["na"]))
        return
    print("%-46s %12s %12s %12s  %s" % (name, fmt(r["min"]), fmt(r["median"]),
                                         fmt(r["max"]), unit or r["unit"]))


print("KVMI benchmark, %s; host: %s (%s CPUs), load %s -> %s; %s; guest kernel %s, %s vCPU(s) in L1" % (
    now, a.host_cpu, a.host_cpus, a.load_before, a.load_after, a.qemu, a.kernel, a.guest_cpus))
print("%-46s %12s %12s %12s" % ("figure", "min", "median", "max"))
for fid in sorted(k for k in figs if not k.startswith("p2.") and figs[k].get("unit") != "ratio"):
    row(fid, figs[fid])
for size in [8 << i for i in range(10)]:
    for kind in ("read_physical", "process_vm_readv"):
        fid = "p2.%s.%d" % (kind, size)
        if fid in figs:
            row(fid, figs[fid])
print("%-46s %12s %12s %12s" % ("ratio", "min", "median", "max"))
for fid, what in RATIOS:
    if fid in figs:
        row(what, figs[fid], "")
for size in [8 << i for i in range(10)]:
    fid = "p2.ratio.%d" % size
    if fid in figs and size not in (8, 4096):
        row("P2 READ_PHYSICAL / process_vm_readv, %d B" % size, figs[fid], "")
if a.wall:
    print("wall time of make bench: %s s" % a.wall)

with open(os.path.join(a.dir, "ratios.dat"), "w") as f:
    f.write("# label median min max\n")
    for fid, what in RATIOS:
        r = figs.get(fid)
        if r and "na" not in r and None not in (r["median"], r["min"], r["max"]):
            f.write('"%s" %g %g %g\n' % (fid, r["median"], r["min"], r["max"]))
with open(os.path.join(a.dir, "p2.dat"), "w") as f:
    f.write("# size kvmi_median kvmi_min kvmi_max floor_median floor_min floor_max\n")
    for size in [8 << i for i in range(10)]:
        k = figs.get("p2.read_physical.%d" % size)
        p = figs.get("p2.process_vm_readv.%d" % size)
        if k and p and None not in [k[x] for x in ("median", "min", "max")] + \
                [p[x] for x in ("median", "min", "max")]:
            f.write("%d %g %g %g %g %g %g\n" % (size, k["median"], k["min"], k["max"],
                                                p["median"], p["min"], p["max"]))
