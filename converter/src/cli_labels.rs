//! `dbrt-convert relabel`: names the labels of a `.dbrt` file already written.

use std::path::PathBuf;

use clap::Args;
use dbrt_convert::{EntailmentLabel, LabelNames};

#[derive(Args)]
pub struct RelabelArgs {
    /// The .dbrt model whose labels are named (rewritten in place unless -o is given).
    model: PathBuf,
    /// One name per label, in logit order, comma separated (as many as the model has labels).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    labels: Option<Vec<String>>,
    /// The label that means entailment (zero-shot classification reads its probability), or
    /// `none`. Without it, new --labels drop the one the file stated and a label whose name
    /// starts with "entail" is taken, as Hugging Face's pipeline does.
    #[arg(long, value_name = "NAME|none")]
    entailment_label: Option<EntailmentLabel>,
    /// Write the relabelled model here instead of replacing MODEL.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn relabel(a: RelabelArgs) -> Result<(), String> {
    // In place means the file itself: a symbolic link is followed, not replaced by a copy.
    let out = match &a.output {
        Some(o) => o.clone(),
        None => std::fs::canonicalize(&a.model).unwrap_or_else(|_| a.model.clone()),
    };
    let names = LabelNames {
        labels: a.labels,
        entailment: a.entailment_label,
    };
    let r = dbrt_convert::labels::relabel(&a.model, &out, &names).map_err(|e| e.to_string())?;
    let entailment = r
        .entailment
        .map_or("none (zero-shot needs --entailment-label)".into(), |i| {
            format!("{} (index {i})", r.labels[i])
        });
    eprintln!(
        "wrote {}: labels {}; entailment label {entailment}",
        out.display(),
        r.labels.join(",")
    );
    Ok(())
}
