//! The accelerator as an encoder stage: a device model shared by sessions (the compiled
//! graphs), per-session device state (every buffer made when the session is), and the stage
//! that pads a sequence into the shortest bucket that holds it, masks the padding, runs the
//! device and copies the tokens' rows back.

use std::fmt;
use std::sync::Arc;

use super::ascend::backend::{AscendModel, AscendState, AttachError};
use super::ort::backend::{OrtModel, OrtState};
use super::FallbackKind;
use crate::error::{Error, Result};
use crate::model::stage::{tokens_of, EncoderStage, Rows};

/// Room for a recorded message (a longer one is cut at a character boundary).
pub const MESSAGE_CAPACITY: usize = 1024;

/// A message in a buffer reserved once: setting it never allocates.
#[derive(Debug)]
pub struct Message(String);

impl Default for Message {
    fn default() -> Message {
        Message(String::with_capacity(MESSAGE_CAPACITY))
    }
}

impl Message {
    pub fn set(&mut self, args: fmt::Arguments<'_>) {
        self.0.clear();
        let _ = fmt::write(self, args);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MESSAGE_CAPACITY - self.0.len();
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        Ok(())
    }
}

/// The graphs of one artifact directory compiled for one backend, shared by the sessions of
/// one model (`Send + Sync`: runs on it may be concurrent).
pub struct DeviceModel {
    pub backend: &'static str,
    /// Ascending.
    pub buckets: Vec<usize>,
    pub hidden_size: usize,
    pub(super) engine: Engine,
}

/// What runs the graphs: onnxruntime's sessions, or an Ascend offline model.
pub(super) enum Engine {
    Ort(OrtModel),
    /// With the offline model's bytes when they are not in the `.dbrt` file (`None`: its
    /// `ascend.om` tensor).
    Ascend(AscendModel, Option<Vec<u8>>),
}

/// One session's state on the device.
enum State {
    Ort(OrtState),
    Ascend(AscendState),
}

impl DeviceModel {
    pub fn largest_bucket(&self) -> usize {
        self.buckets.last().copied().unwrap_or(0)
    }
}

/// Why a run did not happen on the device (the message is in the accelerator's buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFailure {
    TooLong,
    Device,
}

/// One session's accelerator: the shared device model and this session's device state.
pub struct Accelerator {
    /// Declared before `model`, so dropped first: a session's instance goes before the
    /// device model (context, weight memory) it was made in.
    state: State,
    pub model: Arc<DeviceModel>,
    pub message: Message,
}

impl Accelerator {
    /// This session's state on `model`'s device; `om` is the offline model's bytes when the
    /// device model does not hold them (an Ascend model embedded in the `.dbrt` file).
    pub fn new(
        model: Arc<DeviceModel>,
        om: Option<&[u8]>,
    ) -> std::result::Result<Accelerator, (FallbackKind, Error)> {
        let backend = model.backend;
        let unavailable = |reason| {
            let e = Error::BackendUnavailable { backend, reason };
            (FallbackKind::BackendUnavailable, e)
        };
        let state = match &model.engine {
            Engine::Ort(m) => State::Ort(OrtState::new(m).map_err(unavailable)?),
            Engine::Ascend(m, owned) => {
                let om = owned
                    .as_deref()
                    .or(om)
                    .ok_or_else(|| unavailable("the offline model's bytes are gone".into()))?;
                State::Ascend(AscendState::new(m, om).map_err(|e| match e {
                    AttachError::Unavailable(reason) => unavailable(reason),
                    AttachError::Invalid(why) => (
                        FallbackKind::InvalidArtifacts,
                        Error::InvalidArtifacts(format!(
                            "{backend} cannot use the offline model: {why}"
                        )),
                    ),
                })?)
            }
        };
        Ok(Accelerator {
            state,
            model,
            message: Message::default(),
        })
    }

    /// Runs the first `tokens` rows of `hidden` (`[tokens, hidden_size]` at least) through the
    /// shortest bucket that holds them; the first `rows` rows come back. Allocates nothing.
    pub fn run_tokens(
        &mut self,
        hidden: &mut [f32],
        tokens: usize,
        rows: Rows,
    ) -> std::result::Result<(), RunFailure> {
        let Some(index) = self.model.buckets.iter().position(|&b| b >= tokens) else {
            self.message.set(format_args!(
                "{tokens} tokens, the largest bucket is {}",
                self.model.largest_bucket()
            ));
            return Err(RunFailure::TooLong);
        };
        let rows = match rows {
            Rows::All => tokens,
            Rows::First => 1,
        };
        let message = &mut self.message;
        match (&mut self.state, &self.model.engine) {
            (State::Ort(s), Engine::Ort(m)) => s.run(m, index, hidden, tokens, rows, message),
            (State::Ascend(s), Engine::Ascend(m, _)) => {
                s.run(m, index, hidden, tokens, rows, message)
            }
            _ => {
                message.set(format_args!("a session state of another backend"));
                Err(())
            }
        }
        .map_err(|()| RunFailure::Device)
    }
}

impl EncoderStage for Accelerator {
    fn name(&self) -> &'static str {
        self.model.backend
    }

    fn max_sequence_length(&self) -> usize {
        self.model.largest_bucket()
    }

    fn run(&mut self, hidden: &mut [f32], mask: &[u32], rows: Rows) -> Result<()> {
        let (len, h) = (mask.len(), self.model.hidden_size);
        if hidden.len() != len * h {
            return Err(Error::InvalidArgument(format!(
                "{} hidden values for {len} positions of {h}",
                hidden.len()
            )));
        }
        let t = tokens_of(mask)?;
        match self.run_tokens(hidden, t, rows) {
            Ok(()) => Ok(()),
            Err(RunFailure::TooLong) => Err(Error::InputTooLong {
                len: t,
                max: self.max_sequence_length(),
            }),
            Err(RunFailure::Device) => Err(Error::Device {
                backend: self.model.backend,
                message: self.message.as_str().to_owned(),
            }),
        }
    }
}
