//! Errors returned to the application for commands that cannot be honoured.

use thiserror::Error;

use crate::protocol::opcode::OpCode;

/// Why a command from the application was refused. Nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The machine has shut down or stopped for good.
    #[error("the machine has stopped")]
    Stopped,
    /// The queue of commands waiting for READY or a rate-limit slot is full.
    #[error("the command queue is full ({capacity} commands waiting)")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The serialized frame is larger than Discord accepts (4096 bytes).
    #[error("{opcode} payload is {size} bytes, over the gateway's {limit}-byte limit")]
    PayloadTooLarge {
        /// The command's opcode.
        opcode: OpCode,
        /// The frame's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `grant_identify` was called while the machine was not waiting for a grant; the grant
    /// was not used (ask the queue again when the next `IdentifyRequested` arrives).
    #[error("no identify is pending")]
    IdentifyNotRequested,
}
