#!/usr/bin/env python3
"""Instruction counts under qemu (benches/qemu/tbcount.c) and the per-core projection.

  arm_count.py WORKDIR DBRT_BINARY [LIBONNXRUNTIME]

Reads the runs benches/arm-mca.sh --count left in WORKDIR:
  <run>-1.tb, <run>-<n>.tb   tbcount outputs of a run with a few and with n more inferences
  <run>.base                 load address of the measured binary in that run
  <run>.k                    inferences between the two runs
Per inference = (count of the longer run - count of the shorter) / k, so start-up cancels.

Projection per core: every innermost loop of the binary that runs at least 0.1% of an
inference's instructions costs (iterations counted under qemu) x (llvm-mca cycles per
iteration); everything else (straight-line code, colder loops, libc, the loader) costs its
instruction count / an assumed IPC (REST_IPC below).
"""
import bisect
import glob
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arm_mca as am  # noqa: E402
import arm_report as ar  # noqa: E402

# Assumed instructions per cycle of the code outside the modelled loops: in-order little cores
# 1, out-of-order big cores 2 (a typical IPC of branchy scalar code); stated in the output.
REST_IPC = {"cortex-a55": 1.0, "cortex-a510": 1.0, "neoverse-n1": 2.0, "cortex-a76": 2.0,
            "neoverse-n2": 2.0, "neoverse-v1": 2.0}
HOT = 0.001


def read_tb(path, base):
    """{file address: executions} and the total executed-instruction count of one run."""
    cnt = defaultdict(int)
    total = 0
    with open(path) as f:
        for line in f:
            a, b, *c = line.split()
            if a == "total":
                total = int(b)
                continue
            v, n, k = int(a, 16) - base, int(b), int(c[0])
            for i in range(n):
                cnt[v + 4 * i] += k
    return cnt, total


def per_inference(work, run):
    base = int(open(os.path.join(work, run + ".base")).read().split()[0], 0)
    k = int(open(os.path.join(work, run + ".k")).read())
    pat = re.compile(re.escape(run) + r"-(\d+)\.tb$")
    files = sorted((p for p in glob.glob(os.path.join(work, run + "-*.tb"))
                    if pat.fullmatch(os.path.basename(p))),
                   key=lambda p: int(pat.fullmatch(os.path.basename(p)).group(1)))
    (c1, t1), (c2, t2) = read_tb(files[0], base), read_tb(files[-1], base)
    return {a: (c2.get(a, 0) - c1.get(a, 0)) / k for a in c2}, (t2 - t1) / k


def hot_loops(dis, cnt, total):
    """Innermost loops whose iterations x body length reach HOT of the total, and the address
    ranges of the functions that ran at all."""
    ran = sorted(a for a, k in cnt.items() if k > 0)

    def span(lo, hi):
        i = bisect.bisect_left(ran, lo)
        return i < len(ran) and ran[i] < hi

    funcs, out = {}, []
    for name, start, body in am.functions(dis, span=span):
        funcs[start] = (name, body[-1][0] + 4)
        for h, e in am.innermost_loops(body):
            it = cnt.get(body[h][0], 0)
            n = e - h + 1
            # Instructions the loop really executed: a body with branches (an epilogue with
            # and without GELU, say) runs only part of itself per iteration.
            exe = sum(cnt.get(body[i][0], 0) for i in range(h, e + 1))
            if exe >= HOT * total:
                ins = body[h:e + 1]
                out.append({"func": name, "start": start, "off": body[h][0] - start,
                            "iters": it, "n": n, "exe": exe,
                            "w": am.loop_work(ins), "asm": am.asm_text(ins)})
    return out, funcs


def runs(l):
    """Whole-body iterations of a loop: its iterations, scaled down by the share of its body
    an iteration executed (1 for a body without branches). A loop's cycles and work are
    counted per whole-body iteration, so a branchy body is charged for what it ran (an
    approximation: its cycles taken as proportional to its instructions)."""
    return l["exe"] / l["n"]


def project(label, loops, total, cyc):
    in_loops = sum(l["exe"] for l in loops)
    rest = max(total - in_loops, 0)
    cells = []
    for c in am.CORES:
        cy = [cyc.get((id(l), c[1])) for l in loops]
        if any(x is None for x in cy):
            cells.append("n/a")
            continue
        mc = sum(runs(l) * x for l, x in zip(loops, cy)) + rest / REST_IPC[c[1]]
        cells.append(f"{mc / 1e6:.0f}")
    return (f"| {label} | {total / 1e6:.0f} | {100 * in_loops / total:.0f}% | "
            + " | ".join(cells) + " |")


def group_shares(cnt, funcs, total):
    """Share of an inference's instructions in each KERNELS group (dbrt)."""
    pats = [(lbl, re.compile(p)) for lbl, p in ar.KERNELS]
    share = defaultdict(float)
    starts = sorted(funcs)
    for a, k in cnt.items():
        i = bisect.bisect_right(starts, a) - 1
        if i < 0:
            continue
        name, end = funcs[starts[i]]
        if a >= end:
            continue
        for lbl, p in pats:
            if p.search(name):
                share[lbl] += k
                break
    return {k: v / total for k, v in share.items()}


def group_of(l, is_ort, pats):
    if is_ort:
        return ("MLAS int8 loops" if l["w"]["int8"] else "MLAS fp loops" if l["w"]["fp"]
                else None)
    return next((lbl for lbl, p in pats if p.search(l["func"])), None)


def weighted(rows, cyc, peak):
    """Per run and kernel: work / cycles summed over the kernel's hot loops, weighted by their
    iterations in the run: what an inference gets, not the best instance."""
    pats = [(lbl, re.compile(p)) for lbl, p in ar.KERNELS]
    print("Run-weighted rate per kernel: Σ(iterations x work) / Σ(iterations x llvm-mca cycles) "
          "over the kernel's hot loops; int8 kernels as MACs/cycle and % of the core's SDOT peak, "
          "fp kernels as lane-ops/cycle and % of its FMLA peak.\n")
    print("| run | kernel | share of insns | " + " | ".join(c[0] for c in am.CORES) + " |")
    print("|---|---|---|" + "---|" * len(am.CORES))
    for run, loops, total in rows:
        groups = defaultdict(list)
        for l in loops:
            g = group_of(l, run.startswith("ort"), pats)
            if g:
                groups[g].append(l)
        for g, ls in sorted(groups.items(), key=lambda kv: -sum(l["exe"] for l in kv[1])):
            share = sum(l["exe"] for l in ls) / total
            if share < 0.01:
                continue
            int8 = any(l["w"]["int8"] for l in ls)
            key, pk = ("int8", "dot") if int8 else ("fp", "fp")
            cells = []
            for c in am.CORES:
                cy = [cyc.get((id(l), c[1])) for l in ls]
                if any(x is None for x in cy):
                    cells.append("n/a")
                    continue
                rate = (sum(runs(l) * l["w"][key] for l in ls)
                        / sum(runs(l) * x for l, x in zip(ls, cy)))
                cells.append(f"{rate:.1f} ({100 * rate / peak[(pk, c[1])]:.0f}%)")
            print(f"| {run} | {g} | {100 * share:.0f}% | " + " | ".join(cells) + " |")
    print()


def main(work, binary, lib=None):
    runs = sorted({re.sub(r"-\d+\.tb$", "", os.path.basename(p))
                   for p in glob.glob(os.path.join(work, "*-*.tb"))})
    dbrt_dis = am.disassemble(binary, os.path.join(work, "dbrt.dis"))
    rows, loops_all, shares, tops = [], [], {}, {}
    for run in runs:
        is_ort = run.startswith("ort")
        if is_ort and not lib:
            continue
        dis = am.disassemble(lib, os.path.join(work, "ort.dis")) if is_ort else dbrt_dis
        cnt, total = per_inference(work, run)
        loops, funcs = hot_loops(dis, cnt, total)
        if not is_ort:
            shares[run] = group_shares(cnt, funcs, total)
        if is_ort:  # stripped to its exports: name loops by address
            for l in loops:
                l["func"], l["off"] = "libonnxruntime.so", l["start"] + l["off"]
        tops[run] = sorted(loops, key=lambda l: -l["exe"])[:4]
        loops_all += loops
        rows.append((run, loops, total))
    cyc = am.mca_all([(id(l), l["asm"]) for l in loops_all])
    print("Projected Mcycles per inference (loops: qemu iterations x llvm-mca cycles/iteration; "
          "rest: instructions / assumed IPC "
          + ", ".join(f"{c[0]} {REST_IPC[c[1]]:g}" for c in am.CORES) + ").\n")
    print("| run | Minsns/inference | in modelled loops | "
          + " | ".join(c[0] for c in am.CORES) + " |")
    print("|---|---|---|" + "---|" * len(am.CORES))
    for run, loops, total in rows:
        print(project(run, loops, total, cyc))
    print()
    weighted(rows, cyc, am.peaks())
    if shares:
        labels = [lbl for lbl, _ in ar.KERNELS if any(lbl in s for s in shares.values())]
        print("Share of an inference's executed instructions per kernel (dbrt runs):\n")
        print("| kernel | " + " | ".join(shares) + " |")
        print("|---|" + "---|" * len(shares))
        for lbl in labels:
            print(f"| {lbl} | " + " | ".join(f"{100 * s.get(lbl, 0):.1f}%"
                                            for s in shares.values()) + " |")
        print()
    print("Hottest loops per run (share of the run's instructions; N1-model cycles/iteration):\n")
    for run, top in tops.items():
        for l in top:
            tot = next(t for r, _, t in rows if r == run)
            c = cyc.get((id(l), "neoverse-n1"))
            print(f"- {run}: `{ar.short(l['func'])[:70]}+{l['off']:#x}` {l['n']} insns, "
                  f"{l['iters'] / 1e3:.0f} k iterations, {100 * l['exe'] / tot:.0f}%, "
                  f"{am.fmt(c)} c/iter")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:4])
