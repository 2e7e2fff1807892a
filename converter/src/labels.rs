//! Naming a model's labels: `dbrt-convert --labels A,B,C [--entailment-label NAME]` at
//! conversion and `dbrt-convert relabel` for a file already written. The names go to
//! `labels.id2label`; the entailment label, when one is named (or `none`), to
//! [`ENTAILMENT_KEY`], which the runtime's `Model::entailment_label` reads before it looks for
//! a name starting with "entail".

use std::path::Path;

use dbrt::format::{MetaValue, Metadata, ModelFile};
pub use dbrt::model::ENTAILMENT_KEY;

use crate::error::{ConvertError, Result};

/// The metadata key of the label names.
pub const ID2LABEL_KEY: &str = "labels.id2label";

/// Which label means entailment, as the user says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntailmentLabel {
    /// The label of this name.
    Named(String),
    /// No label means entailment (zero-shot is refused with this model).
    None,
}

impl std::str::FromStr for EntailmentLabel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "" => Err("an empty label name".into()),
            "none" => Ok(EntailmentLabel::None),
            name => Ok(EntailmentLabel::Named(name.into())),
        }
    }
}

/// New names for a model's labels, and its entailment label.
#[derive(Debug, Clone, Default)]
pub struct LabelNames {
    /// One name per logit, in logit order; `None` keeps the names the model has.
    pub labels: Option<Vec<String>>,
    /// `None` leaves the choice to the by-name rule (or, when `labels` is `None`, to what the
    /// file already states).
    pub entailment: Option<EntailmentLabel>,
}

impl LabelNames {
    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.entailment.is_none()
    }
}

/// Checks `names` against a model of `count` labels: as many names, none empty, no two alike.
pub fn check_names(names: &[String], count: usize, model: &Path) -> Result<()> {
    if count == 0 {
        return Err(ConvertError::Invalid(format!(
            "{}: --labels: the model has no classification head, so no labels to name",
            model.display()
        )));
    }
    if names.len() != count {
        return Err(ConvertError::Invalid(format!(
            "{}: --labels gives {} names ({}), the model has {count} labels",
            model.display(),
            names.len(),
            names.join(",")
        )));
    }
    if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(ConvertError::Invalid(format!(
            "--labels: name {} of {count} is empty",
            i + 1
        )));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(ConvertError::Invalid(format!(
                "--labels: '{n}' is given twice (each label needs its own name)"
            )));
        }
    }
    Ok(())
}

/// The index [`ENTAILMENT_KEY`] stores for `choice` among `labels` (-1: none).
pub fn entailment_index(choice: &EntailmentLabel, labels: &[String]) -> Result<i64> {
    match choice {
        EntailmentLabel::None => Ok(-1),
        EntailmentLabel::Named(name) => labels
            .iter()
            .position(|l| l == name)
            .map(|i| i as i64)
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "--entailment-label '{name}' is not one of the labels ({}); name one of \
                     them, or 'none'",
                    labels.join(",")
                ))
            }),
    }
}

/// Writes `names` into `meta`, a model's metadata whose label names are `current`; returns
/// the labels it now has.
pub fn apply(
    meta: &mut Metadata,
    current: &[String],
    names: &LabelNames,
    model: &Path,
) -> Result<Vec<String>> {
    let labels = match &names.labels {
        Some(n) => {
            // `--labels "a, b"` means `a` and `b`.
            let n: Vec<String> = n.iter().map(|s| s.trim().to_string()).collect();
            check_names(&n, current.len(), model)?;
            n
        }
        None => current.to_vec(),
    };
    if let Some(choice) = &names.entailment {
        if current.is_empty() {
            return Err(ConvertError::Invalid(format!(
                "{}: --entailment-label: the model has no classification head",
                model.display()
            )));
        }
        meta.set(
            ENTAILMENT_KEY,
            MetaValue::I64(entailment_index(choice, &labels)?),
        );
    }
    meta.set(ID2LABEL_KEY, MetaValue::StrList(labels.clone()));
    Ok(labels)
}

/// What a relabelled file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relabelled {
    pub labels: Vec<String>,
    /// The entailment label the runtime now finds.
    pub entailment: Option<usize>,
    /// The file's length in bytes.
    pub bytes: u64,
}

/// Writes `out` (which may be `model` itself): `model` with its labels named as `names` says,
/// every tensor record and every other metadata entry copied as stored. The new file is
/// written beside `out` under a temporary name, opened as the runtime opens it, and renamed
/// over `out` only if its labels read back as written. New names without an entailment label
/// drop the one the file stated: the by-name rule then applies to the new names.
pub fn relabel(model: &Path, out: &Path, names: &LabelNames) -> Result<Relabelled> {
    if names.is_empty() {
        return Err(ConvertError::Invalid(
            "relabel: nothing to change (give --labels, --entailment-label or both)".into(),
        ));
    }
    crate::check_output(out)?;
    let file = ModelFile::open(model).map_err(|e| ConvertError::Parse {
        path: model.to_path_buf(),
        message: format!("not a .dbrt file dbrt opens: {e}"),
    })?;
    // What is copied is checked first: the copy's checksums are computed afresh and would
    // otherwise seal damage in.
    file.verify_data()
        .map_err(|e| ConvertError::Invalid(format!("{}: {e}", model.display())))?;
    let current = match file.metadata().get(ID2LABEL_KEY) {
        Some(_) => file.metadata().str_list(ID2LABEL_KEY)?.to_vec(),
        None => Vec::new(),
    };
    let drop_entailment = names.labels.is_some() && names.entailment.is_none();
    let mut w = crate::copy::copy_of(
        &file,
        |_| true,
        |k| !(drop_entailment && k == ENTAILMENT_KEY),
    )?;
    // Every byte is in the writer: the source's map (and its shared lock) goes before the
    // new file is renamed over it.
    drop(file);
    let labels = apply(&mut w.metadata, &current, names, model)?;
    let mut entailment = None;
    let bytes = w.write_to_path_checked(out, |tmp: &Path| {
        let m = dbrt::Model::open(tmp).map_err(|e| {
            ConvertError::Invalid(format!(
                "{}: the relabelled copy does not open: {e}",
                out.display()
            ))
        })?;
        if m.labels() != labels.as_slice() {
            return Err(ConvertError::Invalid(format!(
                "{}: the labels read back as {:?}, not {labels:?}",
                out.display(),
                m.labels()
            )));
        }
        entailment = m.entailment_label();
        let stated = (names.entailment.as_ref())
            .map(|c| entailment_index(c, &labels))
            .transpose()?;
        if let Some(want) = stated {
            let want = usize::try_from(want).ok();
            if entailment != want {
                return Err(ConvertError::Invalid(format!(
                    "{}: the entailment label reads back as {entailment:?}, not {want:?}",
                    out.display()
                )));
            }
        }
        Ok(())
    })?;
    Ok(Relabelled {
        labels,
        entailment,
        bytes,
    })
}
