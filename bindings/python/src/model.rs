//! `dbrt.Model`: an opened `.dbrt` file, shared by its sessions.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use dbrt::format::ModelFile;
use dbrt::kernels::Isa;
use dbrt::offload::{BackendChoice, FallbackPolicy, OffloadOptions};
use dbrt::{Model, SessionOptions, Truncation};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{invalid_argument, OrRaise};
use crate::session::PySession;

/// An opened .dbrt model: its weights (memory-mapped by default), configuration, labels and
/// tokenizer. Immutable; any number of sessions on any threads share it.
///
/// Model(path, *, read=False): maps the file; with read=True reads it into memory instead
/// (later changes to the file cannot affect the model). Model.from_bytes(data) copies bytes.
#[pyclass(name = "Model", module = "dbrt", frozen)]
pub struct PyModel {
    pub(crate) model: Arc<Model>,
    path: Option<PathBuf>,
}

#[pymethods]
impl PyModel {
    #[new]
    #[pyo3(signature = (path, *, read = false))]
    fn new(py: Python<'_>, path: PathBuf, read: bool) -> PyResult<PyModel> {
        let model = py
            .detach(|| {
                if read {
                    Model::open_read(&path)
                } else {
                    Model::open(&path)
                }
            })
            .or_raise(py)?;
        Ok(PyModel {
            model: Arc::new(model),
            path: Some(path),
        })
    }

    /// A model from the bytes of a .dbrt file (bytes, bytearray; copied into an aligned
    /// buffer of its own).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Cow<'_, [u8]>) -> PyResult<PyModel> {
        let model = py
            .detach(|| ModelFile::from_bytes_copied(&data).and_then(Model::from_file))
            .or_raise(py)?;
        Ok(PyModel {
            model: Arc::new(model),
            path: None,
        })
    }

    /// The file the model was opened from; None for `from_bytes`.
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.display().to_string())
    }

    /// The label names, by index.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels().to_vec()
    }

    #[getter]
    fn num_labels(&self) -> usize {
        self.model.config().num_labels
    }

    /// The index of the label that means entailment (zero-shot uses it), or None when the
    /// file does not name one.
    #[getter]
    fn entailment_label(&self) -> Option<usize> {
        self.model.entailment_label()
    }

    /// How the large matrices are stored: "f32", "f16", "bf16" or "int8".
    #[getter]
    fn weight_type(&self) -> &'static str {
        self.model.weight_type().name()
    }

    /// The longest input, in tokens.
    #[getter]
    fn max_length(&self) -> usize {
        self.model.max_sequence_length()
    }

    #[getter]
    fn hidden_size(&self) -> usize {
        self.model.config().hidden_size
    }

    /// The model's configuration, with Hugging Face's key names.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.model.config();
        let d = PyDict::new(py);
        d.set_item("model_type", "deberta-v2")?;
        d.set_item("vocab_size", c.vocab_size)?;
        d.set_item("hidden_size", c.hidden_size)?;
        d.set_item("num_hidden_layers", c.num_hidden_layers)?;
        d.set_item("num_attention_heads", c.num_attention_heads)?;
        d.set_item("intermediate_size", c.intermediate_size)?;
        d.set_item("max_position_embeddings", c.max_position_embeddings)?;
        d.set_item("type_vocab_size", c.type_vocab_size)?;
        d.set_item("layer_norm_eps", c.layer_norm_eps)?;
        d.set_item("hidden_act", c.hidden_act.name())?;
        d.set_item("position_biased_input", c.position_biased_input)?;
        d.set_item("relative_attention", c.relative_attention)?;
        d.set_item("pos_att_type", c.pos_att.names())?;
        d.set_item("share_att_key", c.share_att_key)?;
        d.set_item("max_relative_positions", c.max_relative_positions)?;
        d.set_item("position_buckets", c.position_buckets)?;
        d.set_item("pad_token_id", c.pad_token_id)?;
        d.set_item("num_labels", c.num_labels)?;
        let id2label = PyDict::new(py);
        for (i, l) in self.model.labels().iter().enumerate() {
            id2label.set_item(i, l)?;
        }
        d.set_item("id2label", id2label)?;
        Ok(d)
    }

    /// A session: the scratch memory, kernels and threads for running this model, set up
    /// once. threads: threads per call (the caller's included); max_length: longest input
    /// (default the model's); max_batch: most sequences per batched call; isa: a kernel tier
    /// from available_isas() (default the best); truncation: "longest_first", "only_first"
    /// or "only_second"; entailment_label: the entailment label's index or name, for models
    /// whose labels do not say; backend: "cpu", "auto", "qnn", "ort-cpu" or "ascend", with
    /// artifacts (the directory `dbrt-convert export-onnx` wrote), fallback ("always",
    /// "not-on-device-error", "never") and the accelerator libraries' paths.
    #[pyo3(signature = (
        *,
        threads = 1,
        max_length = None,
        max_batch = 1,
        isa = None,
        truncation = "longest_first",
        entailment_label = None,
        backend = "cpu",
        artifacts = None,
        fallback = "always",
        onnxruntime_library = None,
        qnn_library = None,
        ascendcl_library = None,
        ascend_device = 0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn session(
        slf: &Bound<'_, PyModel>,
        threads: usize,
        max_length: Option<usize>,
        max_batch: usize,
        isa: Option<&str>,
        truncation: &str,
        entailment_label: Option<&Bound<'_, PyAny>>,
        backend: &str,
        artifacts: Option<PathBuf>,
        fallback: &str,
        onnxruntime_library: Option<PathBuf>,
        qnn_library: Option<PathBuf>,
        ascendcl_library: Option<PathBuf>,
        ascend_device: i32,
    ) -> PyResult<PySession> {
        let py = slf.py();
        let model = &slf.get().model;
        let options = SessionOptions {
            max_sequence_length: max_length,
            max_batch,
            truncation: match truncation {
                "longest_first" => Truncation::LongestFirst,
                "only_first" => Truncation::OnlyFirst,
                "only_second" => Truncation::OnlySecond,
                t => {
                    return Err(invalid_argument(
                        py,
                        format!("truncation '{t}' (longest_first, only_first, only_second)"),
                    ))
                }
            },
            threads,
            isa: isa.map(Isa::parse).transpose().or_raise(py)?,
            entailment_label: entailment_index(py, model, entailment_label)?,
            offload: OffloadOptions {
                backend: backend.parse::<BackendChoice>().or_raise(py)?,
                artifacts,
                fallback: match fallback {
                    "always" => FallbackPolicy::Always,
                    "not-on-device-error" => FallbackPolicy::NotOnDeviceError,
                    "never" => FallbackPolicy::Never,
                    f => {
                        return Err(invalid_argument(
                            py,
                            format!("fallback '{f}' (always, not-on-device-error, never)"),
                        ))
                    }
                },
                onnxruntime_library,
                qnn_library,
                ascendcl_library,
                ascend_device,
            },
            ..SessionOptions::default()
        };
        PySession::new(py, slf.clone().unbind(), model.clone(), options)
    }

    fn __repr__(&self) -> String {
        let c = self.model.config();
        format!(
            "dbrt.Model({}, {} layers, hidden {}, {} weights, labels {:?})",
            self.path
                .as_ref()
                .map_or("<bytes>".to_string(), |p| format!("'{}'", p.display())),
            c.num_hidden_layers,
            c.hidden_size,
            self.model.weight_type().name(),
            self.model.labels()
        )
    }
}

/// The entailment label given as an index or a label name.
fn entailment_index(
    py: Python<'_>,
    model: &Model,
    label: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<usize>> {
    let Some(label) = label else { return Ok(None) };
    if let Ok(name) = label.extract::<String>() {
        return match model.labels().iter().position(|l| *l == name) {
            Some(i) => Ok(Some(i)),
            None => Err(invalid_argument(
                py,
                format!(
                    "entailment_label '{name}' is not one of the labels {:?}",
                    model.labels()
                ),
            )),
        };
    }
    let i: usize = label.extract()?;
    if i >= model.config().num_labels {
        return Err(invalid_argument(
            py,
            format!(
                "entailment_label {i} for a model of {} labels",
                model.config().num_labels
            ),
        ));
    }
    Ok(Some(i))
}
