//! `dbrt-convert inspect` and `dbrt-convert check-tokenizer`: what a written file holds.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct CheckTokenizerArgs {
    /// The .dbrt file whose compiled tokenizer is checked.
    #[arg(long)]
    model: PathBuf,
    /// The tokenizer.json (or spm.model) it was compiled from: the `tokenizers` crate runs it as
    /// the reference.
    #[arg(long)]
    tokenizer: PathBuf,
    /// JSONL rows with `premise` and optional `hypothesis`.
    #[arg(long)]
    data: PathBuf,
}

pub fn inspect(path: PathBuf, verify: bool) -> Result<(), String> {
    use std::fmt::Write as _;
    let file = dbrt::format::ModelFile::open(&path).map_err(|e| e.to_string())?;
    let h = file.header();
    // Built as one string: a closed pipe (`| head`) then ends the output, not the process.
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: .dbrt format {}.{}, {} bytes, {} tensors",
        path.display(),
        h.major,
        h.minor,
        h.file_len,
        h.tensor_count
    );
    let _ = writeln!(o, "\nmetadata:");
    for (k, v) in file.metadata().entries() {
        let _ = writeln!(o, "  {k} = {v}");
    }
    let _ = writeln!(o, "\ntensors:");
    let mut total = 0u64;
    for r in file.records() {
        total += r.nbytes;
        let shape = format!("{:?}", r.shape);
        let _ = writeln!(
            o,
            "  {:<64} {:>4} {:<18} {:>12} bytes",
            r.name,
            r.dtype.name(),
            shape,
            r.nbytes
        );
    }
    let _ = writeln!(o, "\ntensor data: {:.2} MB", total as f64 / 1e6);
    if verify {
        file.verify_data().map_err(|e| e.to_string())?;
        let _ = writeln!(o, "data checksums: ok");
    }
    // Opening it as a model checks every tensor's shape against the config.
    let model = std::sync::Arc::new(dbrt::Model::open(&path).map_err(|e| e.to_string())?);
    let _ = writeln!(o, "labels: {:?}", model.labels());
    let entailment = model.entailment_label().map(|i| &model.labels()[i]);
    let _ = writeln!(o, "entailment label: {entailment:?}");
    if verify {
        // A session at the model's full length, one thread: what a default session asks of
        // this machine (its memory is reserved, not touched).
        let len = model.max_sequence_length();
        let session = dbrt::Session::new(model, Default::default())
            .map_err(|e| format!("a session of {len} tokens: {e}"))?;
        let bytes = dbrt::Session::memory_bytes(
            session.model(),
            len,
            session.threads(),
            dbrt::DEFAULT_MAX_WORD_BYTES,
        )
        .map_err(|e| e.to_string())?;
        let _ = writeln!(o, "session at {len} tokens: {:.1} MB", bytes as f64 / 1e6);
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), o.as_bytes());
    Ok(())
}

pub fn check_tokenizer(a: CheckTokenizerArgs) -> Result<(), String> {
    use std::io::BufRead;
    let model = dbrt::Model::open(&a.model).map_err(|e| e.to_string())?;
    let (json, _) = dbrt_convert::tokenizer_source::find(&a.tokenizer, Some(&a.tokenizer))
        .map_err(|e| e.to_string())?;
    let mut oracle = tokenizers::Tokenizer::from_bytes(json.ok_or("no tokenizer")?)
        .map_err(|e| e.to_string())?;
    oracle.with_padding(None);
    oracle
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: model.max_sequence_length(),
            strategy: tokenizers::TruncationStrategy::LongestFirst,
            stride: 0,
            direction: tokenizers::TruncationDirection::Right,
        }))
        .map_err(|e| e.to_string())?;
    let file = std::fs::File::open(&a.data).map_err(|e| format!("{}: {e}", a.data.display()))?;
    let (mut checked, mut differ) = (0usize, 0usize);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let p = row["premise"]
            .as_str()
            .ok_or(format!("line {}: no premise", n + 1))?;
        let h = row["hypothesis"].as_str();
        let mut cases = vec![(p, None), (p, h)];
        if let Some(h) = h {
            cases.extend([(h, None), (h, Some(p))]);
        }
        for (x, y) in cases {
            let ours = model.encode(x, y).map_err(|e| e.to_string())?;
            let theirs = match y {
                Some(y) => oracle.encode((x, y), true),
                None => oracle.encode(x, true),
            }
            .map_err(|e| e.to_string())?;
            checked += 1;
            if ours.ids != theirs.get_ids() || ours.type_ids != theirs.get_type_ids() {
                differ += 1;
                if differ <= 5 {
                    eprintln!(
                        "line {}: {x:?} / {y:?}\n  dbrt:       {:?}\n  tokenizers: {:?}",
                        n + 1,
                        ours.ids,
                        theirs.get_ids()
                    );
                }
            }
        }
    }
    println!("{checked} encodings checked, {differ} differ");
    if differ > 0 {
        return Err(format!("{differ} of {checked} encodings differ"));
    }
    Ok(())
}
