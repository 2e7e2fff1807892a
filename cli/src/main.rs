//! `dbrt`: the runtime-side command. It depends on the runtime only, so it builds for an edge
//! board as the library does.

mod bench;
mod classify;
mod common;
mod eval;
mod zero_shot;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bench::{bench, BenchArgs};
use classify::{classify, tokenize};
use common::OffloadArgs;
use eval::{eval, EvalArgs};
use zero_shot::{zero_shot, ZeroShotArgs};

#[derive(Parser)]
#[command(
    name = "dbrt",
    version,
    about = "Run DeBERTa-v3 models from .dbrt files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify a premise / hypothesis pair; prints every label with its probability.
    Classify {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        premise: String,
        #[arg(long)]
        hypothesis: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        offload: OffloadArgs,
    },
    /// Tokenize every row of a JSONL file (`premise`, optional `hypothesis`) without running the
    /// model; writes each row back with `input_ids` (and `token_type_ids` where the model has
    /// token types).
    Tokenize {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure latency percentiles, throughput, open time, time to first result and peak RSS
    /// for every combination of sequence length, batch size and thread count, with one session
    /// or several running at once.
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
        Command::Classify {
            model,
            premise,
            hypothesis,
            json,
            offload,
        } => offload
            .options()
            .and_then(|o| classify(model, premise, hypothesis, json, o)),
        Command::Eval(args) => eval(args),
        Command::ZeroShot(args) => zero_shot(args),
        Command::Tokenize { model, data, out } => tokenize(model, data, out),
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
