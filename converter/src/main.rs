//! `dbrt-convert`: Hugging Face / ONNX checkpoint → `.dbrt`, and `dbrt-convert inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cli_export::{EmbedOmArgs, ExportArgs, RegisterOmArgs};
use cli_inspect::CheckTokenizerArgs;
use cli_labels::RelabelArgs;
use dbrt_convert::{
    ConvertOptions, EntailmentLabel, LabelNames, OnnxOverrides, Packing, Progress, StorageType,
};

mod cli_export;
mod cli_inspect;
mod cli_labels;

/// The environment variables, listed at the end of the main help.
const ENVIRONMENT: &str = "\
Environment:
  RUST_LOG        what is logged to stderr (default warn, and info for the export
                  subcommands); e.g. RUST_LOG=info shows what the converter inferred
  DBRT_FORCE_ISA  the kernels `inspect --verify` sizes a session for (scalar, avx2,
                  avx512, avx512vnni, neon, ...; default: the best this CPU runs)";

const CONVERT_EXAMPLES: &str = "\
Examples:
  dbrt-convert path/to/hf-model -o model.dbrt
  dbrt-convert model.onnx -o model-int8.dbrt --dtype int8 \\
      --labels contradiction,neutral,entailment --entailment-label entailment
  dbrt-convert relabel model.dbrt --labels negative,positive --entailment-label none
  dbrt-convert inspect model.dbrt --verify

Subcommands have their own help: dbrt-convert help relabel";

#[derive(Parser)]
#[command(
    name = "dbrt-convert",
    version,
    about = "Convert DeBERTa-v2/v3 checkpoints to .dbrt files",
    long_about = "Convert DeBERTa-v2/v3 checkpoints to .dbrt files.\n\n\
        INPUT is a Hugging Face model directory (config.json and model.safetensors or \
        pytorch_model.bin, tokenizer.json or spm.model) or an .onnx file (a config.json \
        beside it is read; one with only id2label/label2id names the labels, the rest is \
        read from the graph).",
    after_help = format!("{CONVERT_EXAMPLES}\n\n{ENVIRONMENT}")
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    convert: ConvertArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print a .dbrt file's config, labels, tensors, sizes and provenance.
    #[command(after_help = "Example:\n  dbrt-convert inspect model.dbrt --verify")]
    Inspect {
        /// The .dbrt file to describe.
        model: PathBuf,
        /// Also check the CRC-32 of every tensor's data.
        #[arg(long)]
        verify: bool,
    },
    /// Compare a model's compiled tokenizer with the `tokenizers` crate on every text of a JSONL
    /// file: each text alone, and each pair in both orders.
    #[command(
        after_help = "Example:\n  dbrt-convert check-tokenizer --model model.dbrt \\
      --tokenizer hf-model/tokenizer.json --data tests/fixtures/real/mnli.goldens.jsonl"
    )]
    CheckTokenizer(CheckTokenizerArgs),
    /// Name the labels of a .dbrt file (and which one means entailment), copying everything
    /// else as stored; the new file is written beside it and renamed into place.
    #[command(after_help = "Examples:\n  \
        dbrt-convert relabel model.dbrt --labels neutral,contradiction_or_entailment \\
      --entailment-label none\n  \
        dbrt-convert relabel model.dbrt --entailment-label entailment -o named.dbrt")]
    Relabel(RelabelArgs),
    /// Export the encoder stage (after the embedding LayerNorm, through the last layer) as one
    /// static-shape ONNX graph per sequence-length bucket, with the manifest that ties them to
    /// the model, for an accelerator backend (`--backend qnn`); with `--target ascend`, one
    /// graph with a dynamic sequence length for Huawei's ATC, and the `atc` command to run.
    #[command(after_help = "Examples:\n  \
        dbrt-convert export-onnx model.dbrt -o export --buckets 64,128\n  \
        dbrt-convert export-onnx model.dbrt -o export-ascend --target ascend --gears 64,128")]
    ExportOnnx(ExportArgs),
    /// Record the offline model ATC compiled from an Ascend export in its manifest (length,
    /// CRC-32, SoC version).
    #[command(
        after_help = "Example:\n  dbrt-convert register-om export-ascend --soc-version Ascend310B1"
    )]
    RegisterOm(RegisterOmArgs),
    /// Write a copy of a .dbrt model with an Ascend export's offline model inside (an optional
    /// part that readers which do not know it skip).
    #[command(
        after_help = "Example:\n  dbrt-convert embed-om model.dbrt export-ascend -o model-ascend.dbrt"
    )]
    EmbedOm(EmbedOmArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Dtype {
    /// As trained: the reference.
    F32,
    /// Half the bytes.
    F16,
    /// Linear weights int8 per output channel, the rest f16: a quarter of the bytes, fastest.
    Int8,
}

#[derive(Clone, Copy, ValueEnum)]
enum PackingArg {
    /// Two 8-row panels alternating (one 64-byte load on AVX-512).
    Panel16,
    /// 8-row panels one after another.
    Panel8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Embeddings {
    /// As --dtype says.
    Same,
    /// Row-wise int4, one scale per row.
    Int4,
}

#[derive(Args)]
struct ConvertArgs {
    /// A Hugging Face model directory, or an .onnx file.
    #[arg(required = true)]
    input: Option<PathBuf>,
    /// The .dbrt file to write.
    #[arg(short, long, required = true)]
    output: Option<PathBuf>,
    /// Storage type of the weight matrices (computation is f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
    /// Storage of the word embedding: as `--dtype` says, or `int4` (row-wise, one scale per
    /// row; a quarter of f16's bytes).
    #[arg(long, value_enum, default_value = "same")]
    embeddings: Embeddings,
    /// Packed layout of int8 linear weights (either runs on every CPU).
    #[arg(long, value_enum, default_value = "panel16")]
    packing: PackingArg,
    /// tokenizer.json, spm.model, or a directory holding one (default: found beside the input).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// ONNX without config.json: attention heads (default hidden / 64).
    #[arg(long)]
    num_heads: Option<usize>,
    /// ONNX without config.json: max_position_embeddings (default 512).
    #[arg(long)]
    max_position_embeddings: Option<usize>,
    /// ONNX without config.json: position_buckets (default: half the relative embeddings if the
    /// graph buckets positions).
    #[arg(long, allow_negative_numbers = true)]
    position_buckets: Option<i64>,
    /// ONNX without config.json: max_relative_positions.
    #[arg(long, allow_negative_numbers = true)]
    max_relative_positions: Option<i64>,
    /// ONNX without config.json: pos_att_type, comma separated (default p2c,c2p).
    #[arg(long, value_delimiter = ',')]
    pos_att_type: Option<Vec<String>>,
    /// ONNX without config.json: layer_norm_eps (default: read from the graph).
    #[arg(long)]
    layer_norm_eps: Option<f64>,
    /// Names for the labels, one per logit in logit order, comma separated (instead of
    /// config.json's id2label); as many as the model has labels.
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    labels: Option<Vec<String>>,
    /// The label that means entailment (zero-shot classification reads its probability), or
    /// `none`; stored in the file. Default: a label whose name starts with "entail".
    #[arg(long, value_name = "NAME|none")]
    entailment_label: Option<EntailmentLabel>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

struct Bar(Option<indicatif::ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: usize) {
        if let Some(b) = &self.0 {
            b.set_length(total as u64);
        }
    }
    fn step(&mut self, name: &str) {
        if let Some(b) = &self.0 {
            b.set_message(name.to_string());
            b.inc(1);
        }
    }
}

fn convert(a: ConvertArgs) -> Result<(), String> {
    let (input, output) = (
        a.input.expect("required by clap"),
        a.output.expect("required by clap"),
    );
    let opts = ConvertOptions {
        storage: match a.dtype {
            Dtype::F32 => StorageType::F32,
            Dtype::F16 => StorageType::F16,
            Dtype::Int8 => StorageType::Int8,
        },
        tokenizer: a.tokenizer,
        int4_embeddings: matches!(a.embeddings, Embeddings::Int4),
        packing: match a.packing {
            PackingArg::Panel16 => Packing::Interleaved16,
            PackingArg::Panel8 => Packing::Panels8,
        },
        onnx: OnnxOverrides {
            num_attention_heads: a.num_heads,
            max_position_embeddings: a.max_position_embeddings,
            position_buckets: a.position_buckets,
            max_relative_positions: a.max_relative_positions,
            pos_att_type: a.pos_att_type,
            layer_norm_eps: a.layer_norm_eps,
        },
        labels: LabelNames {
            labels: a.labels,
            entailment: a.entailment_label,
        },
    };
    let bar = (!a.quiet).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        b
    });
    let mut progress = Bar(bar);
    let t0 = std::time::Instant::now();
    let n =
        dbrt_convert::convert(&input, &output, &opts, &mut progress).map_err(|e| e.to_string())?;
    if let Some(b) = progress.0 {
        b.finish_and_clear();
    }
    eprintln!(
        "wrote {} ({:.1} MB) in {:.1} s",
        output.display(),
        n as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,dbrt_convert::export=info"),
    )
    .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Some(Command::Inspect { model, verify }) => cli_inspect::inspect(model, verify),
        Some(Command::CheckTokenizer(a)) => cli_inspect::check_tokenizer(a),
        Some(Command::Relabel(a)) => cli_labels::relabel(a),
        Some(Command::ExportOnnx(a)) => cli_export::export_onnx(a),
        Some(Command::RegisterOm(a)) => cli_export::register_om(a),
        Some(Command::EmbedOm(a)) => cli_export::embed_om(a),
        None => convert(cli.convert),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbrt-convert: {e}");
            ExitCode::FAILURE
        }
    }
}
