//! `dbrt`: the runtime-side command. It depends on the runtime only, so it builds for an edge
//! board as the library does.

mod bench;
mod classify;
mod common;
mod eval;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bench::{bench, BenchArgs};
use classify::{classify, tokenize, ClassifyArgs, TokenizeArgs};
use common::OffloadArgs;
use eval::eval;

const ENVIRONMENT: &str = "\
Environment variables:
  RUST_LOG              What is logged to stderr: warn (the default), info (e.g. the kernel
                        tier chosen), debug, trace; per module: RUST_LOG=dbrt::offload=debug
  DBRT_FORCE_ISA        The kernel tier to run instead of the best this CPU runs: scalar, avx2,
                        avx512vnni, neon, neon-dotprod, neon-i8mm (an --isa option wins)
  DBRT_ONNXRUNTIME_LIB  onnxruntime's shared library for --backend qnn and ort-cpu
  DBRT_QNN_EP_LIB       onnxruntime's QNN provider library for --backend qnn
  DBRT_ASCENDCL_LIB     AscendCL's library (libascendcl.so) for --backend ascend

Example:
  dbrt classify --model models/aegis-nli-xsmall-int8.dbrt \\
    --premise \"A man is playing a guitar on stage.\" --hypothesis \"Nobody is playing music.\"";

#[derive(Parser)]
#[command(
    name = "dbrt",
    version = bench::DBRT_VERSION,
    about = "Run DeBERTa-v3 models from .dbrt files: classify a text or a pair, evaluate a \
             JSONL file, benchmark",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify a text or a premise / hypothesis pair; prints every label with its probability,
    /// the predicted label first.
    Classify(ClassifyArgs),
    /// Tokenize every row of a JSONL file (`premise`, optional `hypothesis`) without running the
    /// model; writes each row back with `input_ids` (and `token_type_ids` where the model has
    /// token types).
    Tokenize(TokenizeArgs),
    /// Measure latency (mean ± standard deviation, percentiles), throughput, open time, time to
    /// first result and peak RSS for every combination of model, kernel tier, sequence length,
    /// batch size and thread count; a table, Markdown, CSV or JSON.
    Bench(BenchArgs),
    /// Run every row of a JSONL file (`premise`/`hypothesis`, or `input_ids` with optional
    /// `token_type_ids`) and write it back with `input_ids` (and `token_type_ids` where the model
    /// has token types) and `logits` added; prints agreement with `logits_fp32` where present.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Tokenize the text even when the row carries `input_ids`.
        #[arg(long)]
        retokenize: bool,
        #[command(flatten)]
        offload: OffloadArgs,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let r = match Cli::parse().command {
        Command::Classify(args) => classify(args),
        Command::Eval {
            model,
            data,
            out,
            retokenize,
            offload,
        } => offload
            .options()
            .and_then(|o| eval(model, data, out, retokenize, o)),
        Command::Tokenize(args) => tokenize(args),
        Command::Bench(args) => bench(args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbrt: {e}");
            ExitCode::FAILURE
        }
    }
}
