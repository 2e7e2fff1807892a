//! `dbrt-convert`'s export subcommands: `export-onnx` (static graphs per bucket, or one
//! dynamic graph for Huawei's ATC), `register-om` and `embed-om`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct RegisterOmArgs {
    /// The Ascend export's directory (its manifest.txt is rewritten).
    dir: PathBuf,
    /// The offline model (default DIR/encoder.om; a file elsewhere is copied into DIR).
    #[arg(long)]
    om: Option<PathBuf>,
    /// The --soc_version ATC compiled it for (e.g. Ascend310B1, Ascend310P3).
    #[arg(long)]
    soc_version: String,
}

#[derive(Args)]
pub struct EmbedOmArgs {
    /// The .dbrt model the export in DIR was made from.
    model: PathBuf,
    /// The Ascend export's directory, its offline model registered (register-om).
    dir: PathBuf,
    /// The .dbrt file to write.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The .dbrt model.
    model: PathBuf,
    /// The artifact directory (created if absent; a previous export there is replaced once the
    /// new one is complete).
    #[arg(short, long)]
    output: PathBuf,
    /// Sequence lengths, one graph each (default 64,128,256,512, those above the model's
    /// maximum dropped).
    #[arg(long, value_delimiter = ',', conflicts_with = "gears")]
    buckets: Option<Vec<usize>>,
    /// Which compiler the graphs are for: static graphs per bucket (qnn), or one graph with a
    /// dynamic sequence length for ATC (ascend).
    #[arg(long, value_enum, default_value = "qnn")]
    target: ExportTarget,
    /// With --target ascend: the sequence lengths ATC compiles, 2 to 100 (default as
    /// --buckets).
    #[arg(long, value_delimiter = ',')]
    gears: Option<Vec<usize>>,
    /// The weights' precision in the graphs (inputs and outputs are f32 either way); f16
    /// halves the files.
    #[arg(long, value_enum, default_value = "f32")]
    precision: ExportPrecision,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportTarget {
    Qnn,
    Ascend,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportPrecision {
    F32,
    F16,
}

pub fn export_onnx(a: ExportArgs) -> Result<(), String> {
    use dbrt::offload::manifest::Precision;
    use dbrt_convert::export::{ExportOptions, DEFAULT_BUCKETS};
    let ascend = a.target == ExportTarget::Ascend;
    if a.gears.is_some() && !ascend {
        return Err("--gears is for --target ascend (static graphs take --buckets)".into());
    }
    if a.buckets.is_some() && ascend {
        return Err(
            "--target ascend takes --gears (one graph; --buckets is for static graphs)".into(),
        );
    }
    let lengths = match a.buckets.or(a.gears) {
        Some(b) => b,
        None => {
            // The defaults the model cannot take are dropped, said so; lengths asked for by
            // name are the library's to refuse.
            let model =
                dbrt::Model::open(&a.model).map_err(|e| format!("{}: {e}", a.model.display()))?;
            let max = model.max_sequence_length();
            let (keep, drop): (Vec<usize>, Vec<usize>) =
                DEFAULT_BUCKETS.iter().partition(|&&s| s <= max);
            if !drop.is_empty() {
                log::warn!("lengths {drop:?} dropped: longer than the model's {max} positions");
            }
            if keep.is_empty() {
                vec![max]
            } else {
                keep
            }
        }
    };
    let precision = match a.precision {
        ExportPrecision::F32 => Precision::F32,
        ExportPrecision::F16 => Precision::F16,
    };
    let t0 = std::time::Instant::now();
    let m = if ascend {
        let options = dbrt_convert::export::AscendOptions {
            gears: lengths,
            precision,
        };
        dbrt_convert::export::export_ascend(&a.model, &a.output, &options)
    } else {
        let options = ExportOptions {
            buckets: lengths,
            precision,
        };
        dbrt_convert::export::export_onnx(&a.model, &a.output, &options)
    }
    .map_err(|e| e.to_string())?;
    for g in &m.graphs {
        eprintln!("  {} ({:.1} MB)", g.file, g.bytes as f64 / 1e6);
    }
    eprintln!(
        "wrote {} graph(s) and {} to {} in {:.1} s",
        m.graphs.len(),
        dbrt::offload::manifest::MANIFEST_FILE,
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    if ascend {
        let soc = "<Ascend310B1|Ascend310P3>";
        let cmd =
            dbrt_convert::export::atc_command(&m, &a.output, soc).map_err(|e| e.to_string())?;
        println!("# compile on a machine with CANN's ATC (the SoC version of the board):");
        println!("{cmd}");
        println!(
            "# or: scripts/ascend/compile.sh {} --soc_version <SoC> (runs atc, then register-om)",
            a.output.display()
        );
    }
    Ok(())
}

pub fn register_om(a: RegisterOmArgs) -> Result<(), String> {
    let m = dbrt_convert::export::register_om(&a.dir, a.om.as_deref(), &a.soc_version)
        .map_err(|e| e.to_string())?;
    if let Some(om) = m.ascend.and_then(|p| p.om) {
        eprintln!(
            "registered {} ({} bytes, crc32 {:08x}, {}) in {}",
            om.file,
            om.bytes,
            om.crc32,
            om.soc_version,
            a.dir.join(dbrt::offload::manifest::MANIFEST_FILE).display()
        );
    }
    Ok(())
}

pub fn embed_om(a: EmbedOmArgs) -> Result<(), String> {
    let n =
        dbrt_convert::export::embed_om(&a.model, &a.dir, &a.output).map_err(|e| e.to_string())?;
    eprintln!("wrote {} ({:.1} MB)", a.output.display(), n as f64 / 1e6);
    Ok(())
}
