#!/usr/bin/env python3
"""Static pipeline model of aarch64 hot loops: disassembly -> innermost loops -> llvm-mca.

Used by benches/arm-mca.sh (which builds, downloads and runs; see benches/ARM.md for the method).
Library part here; the qemu counting and the projection are in arm_count.py.

Work is counted from the instructions themselves, so nothing here knows a kernel's tile:
  int8 MACs   SDOT/UDOT/USDOT/SUDOT .4s 16 (.2s 8); SMMLA/UMMLA/USMMLA 32;
              SMULL/SMLAL/UMULL/UMLAL(2) into .8h (8-bit sources) 8; vector MUL/MLA one per
              lane (.4s 4: the auto-vectorized scalar reference multiplies widened int8).
  fp lane-ops FMLA/FMLS/FMUL/FADD/FSUB/FMAX/FMIN/FMULX/FDIV/FNEG-free arithmetic:
              .4s 4, .2s/.2d 2, scalar s/d/h 1 (an FMA counts 1: it is one MAC).
A loop's class is the work it has most of (int8 first); a core's peak for a class is what the
same llvm-mca reports for a stream of 24 independent instructions of that class.
"""
import bisect
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

MCA = os.environ.get("LLVM_MCA", "llvm-mca-19")
MATTR = "+dotprod,+i8mm,+fullfp16"
ITERS = 200

# (column label, llvm -mcpu, note). llvm 19 gives cortex-a76/x1 the Cortex-A57 model, so the
# A76-class core is neoverse-n1's model; the A57-model row is printed too, labelled as such.
CORES = [
    ("A55", "cortex-a55", "own model"),
    ("A510", "cortex-a510", "own model"),
    ("N1 (A76-class)", "neoverse-n1", "own model"),
    ("A76 (A57 model)", "cortex-a76", "llvm 19: Cortex-A57 model"),
    ("N2 (=A710/X2)", "neoverse-n2", "own model"),
    ("V1", "neoverse-v1", "own model"),
]

INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
FUNC = re.compile(r"^([0-9a-f]+) <(.*)>:$")
BRANCH = {"b", "cbz", "cbnz", "tbz", "tbnz"}
TARGET = re.compile(r"0x([0-9a-f]+)(?: <[^>]*>)?\s*$")
LABELREF = re.compile(r"0x[0-9a-f]+ <[^>]*>")
DOT = {"sdot", "udot", "usdot", "sudot"}
MMLA = {"smmla", "ummla", "usmmla"}
MULL = {"smull", "smull2", "smlal", "smlal2", "umull", "umull2", "umlal", "umlal2"}
MLA = {"mla", "mul"}  # vector multiplies of widened int8 (the auto-vectorized scalar reference)
FP = {"fmla", "fmls", "fmul", "fadd", "fsub", "fmax", "fmin", "fmaxnm", "fminnm", "fmulx",
      "fdiv", "fmadd", "fmsub", "fnmadd", "fnmsub", "fnmul", "fabd"}


def work(m, ops):
    """(class, amount) of one instruction, or None."""
    dest = ops.split(",", 1)[0]
    if m in DOT:
        return ("int8", 16 if ".4s" in dest else 8)
    if m in MMLA:
        return ("int8", 32)
    if m in MULL and ".8h" in dest:
        return ("int8", 8)
    if m in MLA and dest.startswith("v"):
        return ("int8", 16 if ".16b" in dest else 8 if ".8h" in dest else 4)
    if m in FP:
        if ".4s" in dest:
            return ("fp", 4)
        if ".2s" in dest or ".2d" in dest:
            return ("fp", 2)
        if ".8h" in dest or ".4h" in dest:
            return ("fp", 8 if ".8h" in dest else 4)
        return ("fp", 1)
    return None


def kind(m):
    """The int8 instruction family, for per-family peaks."""
    return ("dot" if m in DOT else "mmla" if m in MMLA else "mull" if m in MULL
            else "mla" if m in MLA else None)


def is_branch(m):
    return m in BRANCH or m.startswith("b.")


def disassemble(path, out):
    """llvm-objdump of path into out (reused when newer than path)."""
    if not (os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path)):
        with open(out + ".tmp", "w") as f:
            subprocess.run(["llvm-objdump-19", "-d", "--no-show-raw-insn", "--demangle", path],
                           stdout=f, check=True)
        os.replace(out + ".tmp", out)
    return out


def functions(dis_path, keep=lambda name: True, has=None, span=None):
    """Yield (name, start, [(addr, mnemonic, operands)]) for every function keep() accepts.

    objdump separates functions by a blank line, so a function's text is tested cheaply before
    it is parsed: has (substrings, one of which must occur) and span(start, end) (the address
    range must be wanted) skip the rest of a 5-million-instruction library quickly.
    """
    with open(dis_path) as f:
        text = f.read()
    for chunk in text.split("\n\n"):
        head, _, rest = chunk.lstrip("\n").partition("\n")
        m = FUNC.match(head)
        if not m or not rest or not keep(m.group(2)):
            continue
        if has and not any(h in rest for h in has):
            continue
        start = int(m.group(1), 16)
        if span:
            last = INSN.match(rest[rest.rfind("\n") + 1:])
            if not span(start, int(last.group(1), 16) + 4 if last else start):
                continue
        body = []
        for line in rest.split("\n"):
            x = INSN.match(line)
            if x:
                body.append((int(x.group(1), 16), x.group(2), x.group(3)))
        if body:
            yield m.group(2), start, body


def innermost_loops(body):
    """Innermost loops of one function: [(head index, last index)].

    A loop is the set of backward branches to one head (merged: a rarely taken bounds check
    that jumps back to the head is part of the same iteration); it is innermost when no loop
    with another head lies inside it.
    """
    index = {a: i for i, (a, _, _) in enumerate(body)}
    ends = {}
    for i, (a, m, ops) in enumerate(body):
        if not is_branch(m):
            continue
        t = TARGET.search(ops)
        if not t:
            continue
        h = int(t.group(1), 16)
        if h <= a and h in index:
            hi = index[h]
            ends[hi] = max(ends.get(hi, hi), i)
    loops = sorted(ends.items())
    heads = [h for h, _ in loops]
    out = []
    for h, e in loops:
        # Another loop inside this one starts after its head and no later than its end.
        j = bisect.bisect_right(heads, h)
        inner = False
        while j < len(loops) and loops[j][0] <= e:
            if loops[j][1] <= e:
                inner = True
                break
            j += 1
        if not inner:
            out.append((h, e))
    return out


def loop_work(insns):
    w = {"int8": 0, "fp": 0}
    fam = {}
    for _, m, ops in insns:
        x = work(m, ops)
        if x:
            w[x[0]] += x[1]
            k = kind(m)
            if k:
                fam[k] = fam.get(k, 0) + x[1]
    w["family"] = max(fam, key=fam.get) if fam else None
    return w


def asm_text(insns):
    """The loop body as llvm-mc input: every address operand becomes the loop's own label."""
    lines = [".Ltop:"]
    for _, m, ops in insns:
        ops = LABELREF.sub(".Ltop", ops)
        if (is_branch(m) or m in ("adr", "adrp", "bl")) and re.search(r"0x[0-9a-f]+\s*$", ops):
            ops = re.sub(r"0x[0-9a-f]+\s*$", ".Ltop", ops)
        ops = ops.split("//")[0].rstrip()
        lines.append(f"\t{m}\t{ops}")
    return "\n".join(lines) + "\n"


def mca_cycles(asm, mcpu):
    """Cycles per iteration of asm on mcpu by llvm-mca (None if llvm-mca refuses it)."""
    r = subprocess.run([MCA, "-mtriple=aarch64", f"-mcpu={mcpu}", f"-mattr={MATTR}",
                        f"-iterations={ITERS}", "-summary-view", "-resource-pressure=false",
                        "-instruction-info=false"],
                       input=asm, capture_output=True, text=True)
    m = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    return int(m.group(1)) / ITERS if m and r.returncode == 0 else None


def mca_all(asms):
    """{(key, mcpu): cycles} for every (key, asm) in asms on every core, in parallel."""
    jobs = [(k, c[1], a) for k, a in asms for c in CORES]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        res = ex.map(lambda j: mca_cycles(j[2], j[1]), jobs)
        return {(k, c): r for (k, c, _), r in zip(jobs, res)}


PEAK_STREAMS = {
    "dot": "sdot v{i}.4s, v28.16b, v29.16b",
    "mmla": "smmla v{i}.4s, v28.16b, v29.16b",
    "mull": "smlal v{i}.8h, v28.8b, v29.8b",
    "mla": "mla v{i}.4s, v28.4s, v29.4s",
    "fp": "fmla v{i}.4s, v28.4s, v29.4s",
}
PEAK_WORK = {"dot": 16, "mmla": 32, "mull": 8, "mla": 4, "fp": 4}


def peaks():
    """{(family, mcpu): work per cycle} of 24 independent accumulators of one instruction."""
    asms = [(f, "\n".join(s.format(i=i) for i in range(24)) + "\n") for f, s in PEAK_STREAMS.items()]
    cyc = mca_all(asms)
    return {k: (24 * PEAK_WORK[k[0]] / c if c else None) for k, c in cyc.items()}


def fmt(x, d=1):
    return "n/a" if x is None else f"{x:.{d}f}"


def row_cells(w, cyc, peak, mcpu):
    """The per-core cells: cycles/iter, work/cycle, % of the class peak, % of the SDOT peak."""
    if cyc is None:
        return ["n/a"] * 4
    if w["int8"]:
        rate = w["int8"] / cyc
        p = peak.get((w["family"], mcpu))
        return [fmt(cyc), fmt(rate), fmt(p and 100 * rate / p, 0) + "%",
                fmt(100 * rate / peak[("dot", mcpu)], 0) + "%"]
    rate = w["fp"] / cyc
    return [fmt(cyc), fmt(rate), fmt(100 * rate / peak[("fp", mcpu)], 0) + "%", ""]


def print_peaks(peak):
    print("| peak (llvm-mca, 24 independent accumulators) | "
          + " | ".join(c[0] for c in CORES) + " |")
    print("|---|" + "---|" * len(CORES))
    for f, s in PEAK_STREAMS.items():
        unit = "int8 MACs" if f != "fp" else "f32 lane-ops"
        print(f"| {s.split()[0].upper()} ({unit}/cycle) | "
              + " | ".join(fmt(peak[(f, c[1])]) for c in CORES) + " |")
    print()


def print_table(rows, peak):
    """rows: [(label, where, insns, work)] with work['cyc'][mcpu]."""
    print("Per core: cycles/iteration, MACs (int8) or lane-ops (fp) per cycle, % of the core's "
          "peak for the loop's own instruction class, % of the core's SDOT peak (int8 only).\n")
    print("| kernel | loop | insns | work/iter | "
          + " | ".join(c[0] for c in CORES) + " |")
    print("|---|---|---|---|" + "---|" * len(CORES))
    for label, where, n, w in rows:
        wk = (f"{w['int8']} int8 ({w['family']})" + (f" + {w['fp']} fp" if w["fp"] else "")
              if w["int8"] else f"{w['fp']} fp")
        cells = []
        for c in CORES:
            cy, rate, pc, pd = row_cells(w, w["cyc"].get(c[1]), peak, c[1])
            cells.append(f"{cy} c · {rate}/c · {pc}" + (f" · {pd} sdot" if pd else ""))
        print(f"| {label} | `{where}` | {n} | {wk} | " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    sys.exit("run benches/arm-mca.sh")
