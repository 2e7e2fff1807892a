//! `dbrt.Session`: runs a model. The engine runs with the GIL released.

use std::sync::{Arc, Mutex, MutexGuard};

use dbrt::boundary::catch_panic;
use dbrt::session::PanicPoint;
use dbrt::{Model, Sequence, Session, SessionOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::arrays::{f32_array, token_ids, Ids};
use crate::errors::{internal, invalid_argument, to_py, OrRaise};
use crate::model::PyModel;

/// A session of a Model: its scratch memory, kernels and threads, set up once; calls allocate
/// nothing in the engine. One call at a time: a call from another thread waits for the
/// running one. Create one session per Python thread to use several cores.
#[pyclass(name = "Session", module = "dbrt", frozen)]
pub struct PySession {
    /// `None` only while dropped (see `Drop`).
    session: Option<Mutex<Session>>,
    model: Py<PyModel>,
    shared: Arc<Model>,
}

/// One input of `classify_batch`: a text, or a (premise, hypothesis) pair.
type Pair = (String, Option<String>);

impl PySession {
    pub fn new(
        py: Python<'_>,
        model: Py<PyModel>,
        shared: Arc<Model>,
        options: SessionOptions,
    ) -> PyResult<PySession> {
        let m = shared.clone();
        let session = py.detach(move || Session::new(m, options)).or_raise(py)?;
        Ok(PySession {
            session: Some(Mutex::new(session)),
            model,
            shared,
        })
    }

    /// The session, for a call. A call that panicked (a bug, raised as PanicException) left
    /// nothing half-done that the next call reads: the runtime's sessions survive panics.
    fn lock(&self) -> MutexGuard<'_, Session> {
        let session = self
            .session
            .as_ref()
            .expect("a session is only taken out when it is dropped");
        session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn labels(&self) -> &[String] {
        self.shared.labels()
    }

    /// Runs `f` on the session with the GIL released; a panic (a bug) is a `DbrtError` with
    /// status INTERNAL_ERROR.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Session) -> dbrt::Result<T> + Send,
    ) -> PyResult<T> {
        match py.detach(|| catch_panic(|| f(&mut self.lock()))) {
            Ok(r) => r.or_raise(py),
            Err(what) => Err(internal(py, &what)),
        }
    }

    fn sequence_ids(
        &self,
        py: Python<'_>,
        input_ids: &Bound<'_, PyAny>,
        token_type_ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Vec<u32>, Option<Vec<u32>>)> {
        let config = self.shared.config();
        let ids = token_ids(
            py,
            input_ids,
            Ids::Tokens {
                vocab: config.vocab_size,
            },
        )?;
        let types = token_type_ids
            .map(|t| {
                let types = config.type_vocab_size;
                token_ids(py, t, Ids::Types { types })
            })
            .transpose()?;
        if let Some(t) = &types {
            if t.len() != ids.len() {
                return Err(invalid_argument(
                    py,
                    format!("{} token type ids for {} tokens", t.len(), ids.len()),
                ));
            }
        }
        Ok((ids, types))
    }

    /// Runs `f` (`run_logits`, `run_hidden`) on token ids given as Python integers.
    fn run_ids(
        &self,
        py: Python<'_>,
        input_ids: &Bound<'_, PyAny>,
        token_type_ids: Option<&Bound<'_, PyAny>>,
        f: for<'s> fn(&'s mut Session, Sequence<'_>) -> dbrt::Result<&'s [f32]>,
    ) -> PyResult<Vec<f32>> {
        let (ids, types) = self.sequence_ids(py, input_ids, token_type_ids)?;
        self.run(py, |s| {
            let seq = Sequence {
                ids: &ids,
                type_ids: types.as_deref(),
            };
            f(s, seq).map(<[f32]>::to_vec)
        })
    }

    /// One zero-shot result, as Hugging Face's pipeline gives it: labels sorted by score,
    /// highest first; of tied scores the later candidate first (numpy's ascending argsort,
    /// reversed, as the pipeline sorts). `hypotheses[i]` is candidate `i`'s formatted
    /// hypothesis.
    fn zero_shot_one<'py>(
        &self,
        py: Python<'py>,
        text: String,
        labels: &[String],
        hypotheses: &[String],
        multi_label: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        // The hypotheses are already formatted: the runtime's template is just the slot.
        let scores = self.run(py, |s| {
            let refs: Vec<&str> = hypotheses.iter().map(String::as_str).collect();
            s.classify_zero_shot(&text, &refs, "{}", multi_label)
        })?;
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        order.reverse();
        let d = PyDict::new(py);
        d.set_item("sequence", text)?;
        d.set_item(
            "labels",
            order
                .iter()
                .map(|&i| labels[i].as_str())
                .collect::<Vec<_>>(),
        )?;
        d.set_item(
            "scores",
            order
                .iter()
                .map(|&i| f64::from(scores[i]))
                .collect::<Vec<_>>(),
        )?;
        Ok(d)
    }
}

impl Drop for PySession {
    /// The session (its threads, and an accelerator's session whose library may log from
    /// threads of its own) is torn down with the GIL released: a log record sent to Python's
    /// logging from another thread during the teardown then cannot wait on this one.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            Python::attach(|py| py.detach(move || drop(session)));
        }
    }
}

#[pymethods]
impl PySession {
    /// Label probabilities of a text, or of a (premise, hypothesis) pair: {label: probability}
    /// in the model's label order.
    #[pyo3(signature = (premise, hypothesis = None))]
    fn classify<'py>(
        &self,
        py: Python<'py>,
        premise: String,
        hypothesis: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let probs = self.run(py, |s| s.classify(&premise, hypothesis.as_deref()))?;
        let d = PyDict::new(py);
        for (label, p) in self.labels().iter().zip(probs) {
            d.set_item(label, f64::from(p))?;
        }
        Ok(d)
    }

    /// The logits of a text or a pair: a float32 array of one per label.
    #[pyo3(signature = (premise, hypothesis = None))]
    fn classify_logits<'py>(
        &self,
        py: Python<'py>,
        premise: String,
        hypothesis: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let logits = self.run(py, |s| s.classify_logits(&premise, hypothesis.as_deref()))?;
        f32_array(py, &logits, &[logits.len()])
    }

    /// Classifies many inputs: a float32 array [len(pairs), num_labels] of probabilities (or
    /// logits with logits=True). Each input is a text or a (premise, hypothesis) tuple or list.
    /// Every input runs at its own length (no padding is computed); batch_size inputs run per
    /// release of the GIL, between which Ctrl-C is seen.
    #[pyo3(signature = (pairs, *, batch_size = 32, logits = false))]
    fn classify_batch<'py>(
        &self,
        py: Python<'py>,
        pairs: &Bound<'py, PyAny>,
        batch_size: usize,
        logits: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size == 0 {
            return Err(invalid_argument(py, "batch_size 0".into()));
        }
        let inputs = pairs_of(pairs)?;
        let n = self.shared.config().num_labels;
        let mut out = vec![0f32; inputs.len() * n];
        // Chunks of at most all the inputs: batch_size * n then cannot overflow.
        let batch_size = batch_size.min(inputs.len().max(1));
        for (c, (chunk, rows)) in inputs
            .chunks(batch_size)
            .zip(out.chunks_mut(batch_size * n.max(1)))
            .enumerate()
        {
            let failed = self.run(py, |s| {
                for (i, ((p, h), row)) in chunk.iter().zip(rows.chunks_exact_mut(n)).enumerate() {
                    let r = if logits {
                        s.classify_logits_into(p, h.as_deref(), row)
                    } else {
                        s.classify_into(p, h.as_deref(), row)
                    };
                    if let Err(e) = r {
                        return Ok(Some((c * batch_size + i, e)));
                    }
                }
                Ok(None)
            })?;
            if let Some((i, e)) = failed {
                return Err(to_py(py, &e, Some(&format!("pairs[{i}]"))));
            }
            py.check_signals()?;
        }
        f32_array(py, &out, &[inputs.len(), n])
    }

    /// Zero-shot classification with Hugging Face's pipeline semantics and result: for one
    /// text {"sequence", "labels", "scores"} with labels sorted by score, highest first; for a
    /// list of texts a list of those. candidate_labels: a list, or one string of
    /// comma-separated labels. multi_label=False: scores are a softmax of the entailment
    /// logits over the candidates; True (or one candidate): each is entailment against
    /// contradiction for that candidate alone.
    #[pyo3(signature = (
        sequences,
        candidate_labels,
        hypothesis_template = dbrt::session::DEFAULT_HYPOTHESIS_TEMPLATE,
        multi_label = false,
    ))]
    fn zero_shot<'py>(
        &self,
        py: Python<'py>,
        sequences: &Bound<'py, PyAny>,
        candidate_labels: &Bound<'py, PyAny>,
        hypothesis_template: &str,
        multi_label: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let labels: Vec<String> = match candidate_labels.extract::<String>() {
            Ok(s) => s
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            Err(_) => candidate_labels.extract()?,
        };
        if labels.is_empty() {
            return Err(invalid_argument(py, "no candidate labels".into()));
        }
        // Formatted by Python's str.format, as the pipeline does (`{}`, `{0}`; a template
        // with two slots raises IndexError there and here).
        let template = PyString::new(py, hypothesis_template);
        let mut hypotheses = Vec::with_capacity(labels.len());
        for label in &labels {
            let h: String = template.call_method1("format", (label,))?.extract()?;
            if h == hypothesis_template {
                return Err(invalid_argument(
                    py,
                    format!(
                        "hypothesis_template '{hypothesis_template}' has no {{}} where the label goes"
                    ),
                ));
            }
            hypotheses.push(h);
        }
        if let Ok(text) = sequences.extract::<String>() {
            return Ok(self
                .zero_shot_one(py, text, &labels, &hypotheses, multi_label)?
                .into_any());
        }
        let texts: Vec<String> = sequences.extract()?;
        let results = PyList::empty(py);
        for text in texts {
            results.append(self.zero_shot_one(py, text, &labels, &hypotheses, multi_label)?)?;
            py.check_signals()?;
        }
        Ok(results.into_any())
    }

    /// The model's tokens for a text or a pair, as Hugging Face's tokenizers give them:
    /// {"input_ids", "token_type_ids", "attention_mask"} (lists of ints), truncated to the
    /// session's maximum length.
    #[pyo3(signature = (text, pair = None))]
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        text: String,
        pair: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (ids, types) = self.run(py, |s| {
            s.tokenize(&text, pair.as_deref())
                .map(|(i, t)| (i.to_vec(), t.to_vec()))
        })?;
        let d = PyDict::new(py);
        d.set_item("attention_mask", vec![1u32; ids.len()])?;
        d.set_item("input_ids", ids)?;
        d.set_item("token_type_ids", types)?;
        Ok(d)
    }

    /// The logits of token ids (a list or numpy array; token_type_ids likewise, for models
    /// with token types): a float32 array of one per label.
    #[pyo3(signature = (input_ids, token_type_ids = None))]
    fn run_logits<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
        token_type_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let logits = self.run_ids(py, input_ids, token_type_ids, Session::run_logits)?;
        f32_array(py, &logits, &[logits.len()])
    }

    /// The encoder's last hidden state for token ids: a float32 array [tokens, hidden].
    #[pyo3(signature = (input_ids, token_type_ids = None))]
    fn run_hidden<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
        token_type_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hidden = self.run_ids(py, input_ids, token_type_ids, Session::run_hidden)?;
        let width = self.shared.config().hidden_size;
        f32_array(py, &hidden, &[hidden.len() / width.max(1), width])
    }

    /// The model this session runs.
    #[getter]
    fn model(&self, py: Python<'_>) -> Py<PyModel> {
        self.model.clone_ref(py)
    }

    /// Threads per call (the caller's included).
    #[getter]
    fn threads(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().threads())
    }

    /// The kernel tier the session runs ("avx512vnni", "neon-dotprod", ...).
    #[getter]
    fn isa(&self, py: Python<'_>) -> &'static str {
        py.detach(|| self.lock().isa().name())
    }

    /// The longest input, in tokens.
    #[getter]
    fn max_length(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().max_sequence_length())
    }

    /// The encoder's backend ("cpu", "qnn", "ascend", ...).
    #[getter]
    fn backend(&self, py: Python<'_>) -> &'static str {
        py.detach(|| self.lock().backend())
    }

    /// Which backend ran the last call (None before the first), and, when it fell back to the
    /// CPU, why: {"backend": ..., "fallback": None or {"kind", "message"}}.
    fn last_run<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let (backend, fallback) = py.detach(|| {
            let s = self.lock();
            (
                s.last_backend(),
                s.last_fallback()
                    .map(|f| (f.kind.as_str(), f.message.to_string())),
            )
        });
        let Some(backend) = backend else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("backend", backend)?;
        match fallback {
            Some((kind, message)) => {
                let f = PyDict::new(py);
                f.set_item("kind", kind)?;
                f.set_item("message", message)?;
                d.set_item("fallback", f)?;
            }
            None => d.set_item("fallback", py.None())?,
        }
        Ok(Some(d))
    }

    /// Makes the next call panic, at "tokenizer" (after tokenizing) or "worker" (in the
    /// encoder's last thread): for the tests of the INTERNAL_ERROR path. Not API.
    fn _inject_panic(&self, py: Python<'_>, point: &str) -> PyResult<()> {
        let point = match point {
            "tokenizer" => PanicPoint::AfterTokenizing,
            "worker" => PanicPoint::InWorker,
            p => return Err(invalid_argument(py, format!("panic point '{p}'"))),
        };
        py.detach(|| self.lock().inject_panic(point));
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let s = self.lock();
            format!(
                "dbrt.Session(threads={}, isa='{}', max_length={}, backend='{}')",
                s.threads(),
                s.isa().name(),
                s.max_sequence_length(),
                s.backend()
            )
        })
    }
}

/// `classify_batch`'s inputs: texts, or (premise, hypothesis) tuples or lists.
fn pairs_of(pairs: &Bound<'_, PyAny>) -> PyResult<Vec<Pair>> {
    if pairs.is_instance_of::<PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "pairs is one string: pass a list of texts or of (premise, hypothesis) pairs",
        ));
    }
    let mut out = Vec::new();
    for (i, item) in pairs.try_iter()?.enumerate() {
        let item = item?;
        if let Ok(text) = item.extract::<String>() {
            out.push((text, None));
            continue;
        }
        match item.extract::<Vec<String>>() {
            Ok(v) if v.len() == 2 => {
                let mut v = v.into_iter();
                out.push((v.next().unwrap_or_default(), v.next()));
            }
            _ => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "pairs[{i}] is not a text or a (premise, hypothesis) pair of strings"
                )))
            }
        }
    }
    Ok(out)
}
