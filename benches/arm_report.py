#!/usr/bin/env python3
"""The static tables of benches/arm-mca.sh: dbrt's aarch64 kernels and MLAS's loops under llvm-mca.

  arm_report.py static DBRT_BINARY WORKDIR [LIBONNXRUNTIME]

Prints markdown on stdout. WORKDIR keeps disassemblies and caches (deterministic: the same
binaries give the same tables).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arm_mca as am  # noqa: E402

# label -> demangled-symbol pattern. Every function matching (all monomorphized instances) is
# searched; its innermost loops are candidates. Patterns name modules and function stems, not
# hashes, so they survive rewrites that keep the names the issue gives.
KERNELS = [
    ("int8 GEMM · neon", r"kernels::aarch64::gemm_neon::"),
    ("int8 GEMM · dotprod", r"kernels::aarch64::gemm_dotprod::"),
    ("int8 GEMM · i8mm", r"kernels::aarch64::gemm_i8mm::"),
    ("f32 row panel", r"kernels::aarch64::.*row_panel"),
    ("f32 dot", r"kernels::aarch64::.*dot_f32"),
    ("softmax", r"kernels::aarch64::.*softmax"),
    ("LayerNorm", r"kernels::aarch64::.*layer_norm"),
    ("panel epilogue", r"kernels::aarch64::.*epilogue"),
    ("quantize (f32 -> int8 blocks)", r"kernels::aarch64::.*quantize"),
    ("transpose8", r"kernels::aarch64::.*transpose"),
    ("int8 GEMM · scalar (reference)", r"kernels::scalar::gemm_i8"),
]


def short(name):
    """A demangled name without its crate path and hash, for the table."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    return name.split("kernels::")[-1]


def pick(loops):
    """The loop the work happens in: most int8 MACs per iteration, else most fp lane-ops;
    ties go to the shorter body (more work per instruction)."""
    return max(loops, key=lambda l: (l["w"]["int8"], l["w"]["fp"], -l["n"]), default=None)


def collect(dis, keep, has=None):
    """Every innermost loop of every function keep() accepts, with its work and mca text."""
    out = []
    for name, start, body in am.functions(dis, keep, has):
        for h, e in am.innermost_loops(body):
            insns = body[h:e + 1]
            out.append({"func": name, "head": body[h][0], "off": body[h][0] - start,
                        "n": len(insns), "w": am.loop_work(insns), "ins": insns})
    return out


def dbrt_rows(binary, work):
    dis = am.disassemble(binary, os.path.join(work, "dbrt.dis"))
    pats = [(label, re.compile(p)) for label, p in KERNELS]
    loops = collect(dis, lambda n: any(p.search(n) for _, p in pats))
    rows = []
    for label, p in pats:
        best = pick([l for l in loops if p.search(l["func"])])
        rows.append((label, best))
    return rows


def mlas_rows(lib, work):
    """MLAS: the densest SDOT/UDOT, SMMLA/UMMLA and FMLA innermost loops in the whole .text
    (cached by the library's size and mtime: the scan of 5 M instructions takes a while)."""
    st = os.stat(lib)
    cache = os.path.join(work, f"ort-loops-{st.st_size}-{int(st.st_mtime)}.json")
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    dis = am.disassemble(lib, os.path.join(work, "ort.dis"))
    best = {}
    wanted = ("\tsdot\t", "\tudot\t", "\tsmmla\t", "\tummla\t", "\tfmla\t")
    for l in collect(dis, lambda n: True, wanted):
        fam = l["w"]["family"]
        if l["w"]["int8"] and fam in ("dot", "mmla"):
            key = fam
        elif not l["w"]["int8"] and any(m == "fmla" for _, m, _ in l["ins"]):
            key = "fp"
        else:
            continue
        cur = best.get(key)
        score = (l["w"]["int8"] or l["w"]["fp"], -l["n"])
        if cur is None or score > (cur["w"]["int8"] or cur["w"]["fp"], -cur["n"]):
            best[key] = l
    for l in best.values():
        l["asm"] = am.asm_text(l.pop("ins"))
        # The wheel's library is stripped to its exports: name the loop by its address.
        l["func"], l["off"] = "libonnxruntime.so", l["head"]
    rows = [(f"MLAS {lbl}", best.get(k)) for k, lbl in
            (("dot", "densest SDOT/UDOT loop"), ("mmla", "densest SMMLA/UMMLA loop"),
             ("fp", "densest FMLA loop (SGEMM)"))]
    with open(cache, "w") as f:
        json.dump(rows, f)
    return rows


def static(binary, work, lib=None):
    rows = dbrt_rows(binary, work)
    if lib:
        rows += mlas_rows(lib, work)
    found = [(lbl, l) for lbl, l in rows if l]
    for _, l in found:
        if "asm" not in l:
            l["asm"] = am.asm_text(l.pop("ins"))
    cyc = am.mca_all([(i, l["asm"]) for i, (_, l) in enumerate(found)])
    peak = am.peaks()
    am.print_peaks(peak)
    table = []
    for i, (lbl, l) in enumerate(found):
        l["w"]["cyc"] = {c[1]: cyc[(i, c[1])] for c in am.CORES}
        table.append((lbl, f"{short(l['func'])}+{l['off']:#x}", l["n"], l["w"]))
    am.print_table(table, peak)
    missing = [lbl for lbl, l in rows if not l]
    if missing:
        print("No innermost loop found for: " + ", ".join(missing) + "\n")
    if not lib:
        print("MLAS: skipped (no onnxruntime aarch64 library: offline?)\n")
    return found


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "static":
        sys.exit(__doc__)
    static(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
