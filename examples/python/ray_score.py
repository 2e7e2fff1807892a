"""Score NLI pairs in bulk with Ray Data and dbrt, on one machine or on a Ray cluster.

    python examples/python/ray_score.py --model models/aegis-nli-xsmall-int8.dbrt \\
        --input pairs.jsonl --output scored/
    python examples/python/ray_score.py --model /data/nli.dbrt --input s3://bucket/pairs/ \\
        --output s3://bucket/scored/ --address auto --workers 16

Input: JSONL (one object per line) or Parquet (a file or a directory; `--format` when the
name does not say), with a premise column and an optional hypothesis column, found by name
(premise/hypothesis, sentence1/sentence2, text/text_pair) or given with --columns. Every
input column is kept (an input that already has a column the output adds, such as a gold
`label`, is refused: rename it); the output adds one probability column per label
(`prob_<label>`), the predicted `label` and its `score`, written as JSONL or Parquet files
into --output. Batches go through numpy: a nullable integer column comes back as floats.

Each Ray worker (an actor) opens the model once and keeps one dbrt session; the model file
is memory-mapped, so the workers of a node share its pages through the page cache (one copy
in memory per node, however many workers). On a cluster the file must be at the same path
on every node (a shared file system, or copied there before the job).
"""

import argparse
import sys
import time

import numpy as np

PAIR_COLUMNS = (("premise", "hypothesis"), ("sentence1", "sentence2"), ("text", "text_pair"))


class DbrtScorer:
    """A `map_batches` callable: built once per worker, then called with numpy batches."""

    def __init__(self, model_path, premise, hypothesis, threads=1, chunk=32):
        import dbrt  # imported in the worker's process

        self.model_path = str(model_path)
        self.model = dbrt.Model(self.model_path)  # memory-mapped, not read
        self.session = self.model.session(threads=threads)
        self.labels = np.array(self.model.labels, dtype=object)
        self.premise, self.hypothesis, self.chunk = premise, hypothesis, chunk

    def __call__(self, batch):
        premises = batch[self.premise]
        hypotheses = batch[self.hypothesis] if self.hypothesis else [None] * len(premises)
        pairs = []
        for p, h in zip(premises, hypotheses):
            if missing(p):
                raise ValueError(f"a row without a premise (column {self.premise!r})")
            # A row without a hypothesis (null, or NaN as pandas gives it) is one text.
            pairs.append(text(p) if missing(h) else (text(p), text(h)))
        probs = self.session.classify_batch(pairs, batch_size=self.chunk)
        out = dict(batch)
        for j, name in enumerate(self.labels):
            out[f"prob_{name}"] = probs[:, j]
        best = probs.argmax(axis=1)  # an empty batch gives an empty index
        out["label"] = self.labels[best]
        out["score"] = probs[np.arange(len(pairs)), best]
        return out

    def model_mapping(self):
        """This process's mapping of the model file: (pid, mapped bytes, resident bytes), read
        from /proc/self/smaps (Linux). Shows that the worker maps the file rather than holding
        a private copy."""
        import os

        size = rss = 0
        inside = False
        with open("/proc/self/smaps", encoding="utf-8", errors="replace") as f:
            for line in f:
                head = line.split()
                if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
                    inside = len(head) >= 6 and os.path.realpath(head[5]) == os.path.realpath(
                        self.model_path
                    )
                elif inside and head[0] == "Size:":
                    size += int(head[1]) * 1024
                elif inside and head[0] == "Rss:":
                    rss += int(head[1]) * 1024
        return os.getpid(), size, rss


def missing(value):
    return value is None or (isinstance(value, (float, np.floating)) and value != value)


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def output_columns(model_path):
    import dbrt

    labels = dbrt.Model(str(model_path)).labels  # mapped, not read: cheap
    return [f"prob_{name}" for name in labels] + ["label", "score"]


def find_columns(names, given=None):
    """(premise column, hypothesis column or None) from the dataset's column names."""
    if given:
        parts = given.split(",")
        if len(parts) not in (1, 2) or any(p not in names for p in parts):
            raise SystemExit(f"--columns {given}: the dataset's columns are {', '.join(names)}")
        return parts[0], (parts[1] if len(parts) == 2 else None)
    for p, h in PAIR_COLUMNS:
        if p in names:
            return p, (h if h in names else None)
    raise SystemExit(
        f"no premise column among {', '.join(names)}: name them premise/hypothesis, "
        "sentence1/sentence2 or text/text_pair, or pass --columns"
    )


def input_format(path, given):
    if given:
        return given
    name = str(path).rstrip("/").lower()
    if name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "json"
    if name.endswith(".parquet"):
        return "parquet"
    raise SystemExit(f"{path}: pass --format json or parquet")


def score(
    model,
    input_path,
    output,
    *,
    fmt=None,
    out_fmt=None,
    columns=None,
    workers=2,
    threads=1,
    batch_size=256,
    preserve_order=False,
):
    """Reads the input, scores it on `workers` actors of `threads` threads each and writes the
    output. Returns the number of input rows (counted first: Parquet's from its metadata)."""
    import ray
    import ray.data as ray_data

    fmt = input_format(input_path, fmt)
    cpus = ray.cluster_resources().get("CPU", 0)
    if workers * threads >= cpus:
        # The actors would hold every CPU, and Ray Data's listing, read and write tasks (one CPU
        # each, whatever their num_cpus says for listing) would wait for ever.
        raise SystemExit(
            f"{workers} workers x {threads} threads need {workers * threads} CPUs, and reading "
            f"and writing need more: the cluster has {cpus:g}; lower --workers or --threads"
        )
    ds = ray_data.read_json(input_path) if fmt == "json" else ray_data.read_parquet(input_path)
    names = ds.schema().names
    premise, hypothesis = find_columns(names, columns)
    clash = [c for c in output_columns(model) if c in names]
    if clash:
        # A gold "label" column would be overwritten by the prediction.
        raise SystemExit(
            f"the input has columns the output adds ({', '.join(clash)}): rename them first"
        )
    rows = ds.count()
    scored = ds.map_batches(
        DbrtScorer,
        fn_constructor_kwargs=dict(
            model_path=str(model), premise=premise, hypothesis=hypothesis, threads=threads
        ),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=workers,
        num_cpus=threads,
    )
    options = ray_data.DataContext.get_current().execution_options
    ordered = options.preserve_order  # restored after: the context is the process's
    options.preserve_order = preserve_order or ordered
    try:
        write(scored, output, out_fmt or fmt)
    finally:
        options.preserve_order = ordered
    return rows


def write(scored, output, fmt):
    if fmt == "json":
        # 15 decimals: float32 probabilities above 1e-8 come back to the same float32.
        scored.write_json(output, double_precision=15)
    else:
        scored.write_parquet(output)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the .dbrt file (same path on every node)")
    ap.add_argument("--input", required=True, help="JSONL or Parquet: a file, a directory, a URI")
    ap.add_argument("--output", required=True, help="a directory (local or a URI) for the output")
    ap.add_argument("--format", choices=("json", "parquet"), help="the input's format")
    ap.add_argument("--output-format", choices=("json", "parquet"), help="default: the input's")
    ap.add_argument("--columns", help="PREMISE[,HYPOTHESIS] column names")
    ap.add_argument(
        "--workers", type=int, help="actors, each with one session (default: one per "
        "--threads CPUs of the cluster, less one CPU for reading and writing)"
    )
    ap.add_argument("--threads", type=int, default=1, help="threads per session (CPUs per actor)")
    ap.add_argument("--batch-size", type=int, default=256, help="rows per Ray batch")
    ap.add_argument("--preserve-order", action="store_true", help="output rows in input order")
    ap.add_argument("--address", help="a Ray cluster's address ('auto': the local node's cluster)")
    args = ap.parse_args(argv)
    if (args.workers is not None and args.workers < 1) or args.threads < 1 or args.batch_size < 1:
        ap.error("--workers, --threads and --batch-size must be at least 1")

    import ray

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    workers = args.workers
    if workers is None:
        workers = max(1, (int(ray.cluster_resources().get("CPU", 0)) - 1) // args.threads)
    start = time.perf_counter()
    rows = score(
        args.model,
        args.input,
        args.output,
        fmt=args.format,
        out_fmt=args.output_format,
        columns=args.columns,
        workers=workers,
        threads=args.threads,
        batch_size=args.batch_size,
        preserve_order=args.preserve_order,
    )
    took = time.perf_counter() - start
    print(f"{rows} rows scored into {args.output} in {took:.1f} s ({rows / took:.1f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
