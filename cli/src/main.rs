//! `dbrt`: the runtime-side command. It depends on the runtime only, so it builds for an edge
//! board as the library does.

mod bench;
mod classify;
mod common;
mod eval;
mod zero_shot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bench::{bench, BenchArgs};
use classify::{classify, tokenize, ClassifyArgs, TokenizeArgs};
use eval::{eval, EvalArgs};
use zero_shot::{zero_shot, ZeroShotArgs};

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
    /// Run every row of a JSONL file (text or `input_ids`) on one or more sessions and write it
    /// back with logits, probabilities and the predicted label; prints agreement with
    /// `logits_fp32`, and accuracy and a confusion matrix against gold labels, where present.
    #[command(after_help = eval::EXAMPLES)]
    Eval(EvalArgs),
    /// Zero-shot classification as Hugging Face's pipeline does it: the text against each
    /// candidate label put into a hypothesis template, labels sorted by score.
    #[command(after_help = zero_shot::EXAMPLES)]
    ZeroShot(ZeroShotArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let r = match Cli::parse().command {
        Command::Classify(args) => classify(args),
        Command::Eval(args) => eval(args),
        Command::ZeroShot(args) => zero_shot(args),
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
