//! Store errors and the JSON value codec.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created: check the path, permissions
    /// and free space, then start again.
    #[error("data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The storage engine failed (I/O error, disk full, directory locked by
    /// another process): the operation did not complete; do not acknowledge
    /// anything it covered, retry later or shut down.
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A stored key or value could not be decoded: the data directory is
    /// damaged or from an incompatible version; report the message, skip the
    /// item if the caller can, restore from a backup otherwise.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The caller passed something that cannot be stored (an id with a NUL
    /// byte, a task of another scan): reject the request; a bug if it came
    /// from our own code.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A scan with this id already exists: take a fresh id from
    /// [`Store::next_scan_id`](super::Store::next_scan_id).
    #[error("scan {0} already exists")]
    ScanExists(String),
    /// A value could not be serialized: a bug; report it.
    #[error("encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Too much contention on one key: retry the operation.
    #[error("contention on {0}, retry")]
    Contention(&'static str),
    /// The data directory is of a format this binary cannot open (the
    /// message says which and what to do): nothing was changed.
    #[error("{0}")]
    Format(String),
}

/// What a caller can do about a [`StoreError`]: the one classification that
/// the gRPC edge maps to a status code (`grpc::code_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself cannot be stored: retrying it will not help.
    Invalid,
    /// Stored data could not be decoded: retrying will not help.
    Corrupt,
    /// The storage engine failed or was busy: the same request may succeed later.
    Unavailable,
    /// A bug on our side (an encoding failure, a reused id).
    Internal,
}

impl StoreError {
    /// This error's [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Dir { .. } | Self::Storage(_) | Self::Contention(_) => ErrorKind::Unavailable,
            Self::Corrupt(_) | Self::Format(_) => ErrorKind::Corrupt,
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::ScanExists(_) | Self::Encode { .. } => ErrorKind::Internal,
        }
    }
}

/// Shorthand for store results.
pub type Result<T> = std::result::Result<T, StoreError>;

pub(super) fn storage(err: sled::Error) -> StoreError {
    match err {
        sled::Error::Corruption { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::Storage(Box::new(other)),
    }
}

pub(super) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| StoreError::Encode { what, source })
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| {
        StoreError::Corrupt(format!(
            "{what} at key {:?}: {err}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// A sled iterator to stream, or the error to yield once instead (an
/// invalid prefix, a closed store): how the store's record streams start.
pub(super) fn started(iter: Result<sled::Iter>) -> (Option<sled::Iter>, Option<StoreError>) {
    match iter {
        Ok(iter) => (Some(iter), None),
        Err(err) => (None, Some(err)),
    }
}
