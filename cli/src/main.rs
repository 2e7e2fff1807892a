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
use classify::{classify, tokenize};
use common::OffloadArgs;
use eval::eval;

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
        Command::Classify {
            model,
            premise,
            hypothesis,
            json,
            offload,
        } => offload
            .options()
            .and_then(|o| classify(model, premise, hypothesis, json, o)),
        Command::Eval {
            model,
            data,
            out,
            retokenize,
            offload,
        } => offload
            .options()
            .and_then(|o| eval(model, data, out, retokenize, o)),
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
