//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while training or evaluating the synthetic captioner.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting is out of range; nothing was done.
    #[error("invalid training setting {field} = {value}: expected {expected}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// Building, loading or running the model failed.
    #[error(transparent)]
    Model(#[from] cox_model::Error),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Generating the synthetic scenes failed.
    #[error(transparent)]
    Synth(#[from] cox_synth::SynthError),
    /// The loss became NaN or infinite.
    #[error("the training loss is not finite at step {step} ({loss}); lower the learning rate")]
    Diverged {
        /// The step.
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// A saved optimiser state does not fit the optimiser's variables.
    #[error("cannot resume from the optimiser state {path}: expected {msg}")]
    OptimiserState {
        /// The state file.
        path: std::path::PathBuf,
        /// What it should have held.
        msg: String,
    },
    /// The thread that renders training batches stopped without sending the next one.
    #[error("the batch-rendering thread stopped unexpectedly")]
    BatchWorker,
    /// The data-parallel worker threads could not be started.
    #[error("could not start the training worker threads: {0}")]
    Worker(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A caption does not tokenize as the training format requires.
    #[error("caption {caption:?} does not tokenize into in-vocabulary words: {msg}")]
    Tokenization {
        /// The caption.
        caption: String,
        /// What went wrong.
        msg: String,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, TrainError>;
