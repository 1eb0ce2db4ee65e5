//! Cancellation: a token that the caller holds and the work checks.
//!
//! Conversions check their [`Cancel`] token between tensors and between the pieces of a
//! large tensor; a cancelled one fails with [`Error::Interrupted`], its error unwinds
//! normally, and the commit's cleanup removes every temporary file. The library installs
//! no signal handler: the command line links a token to SIGINT/SIGTERM/SIGHUP
//! (`cli::signals`), and the Python module to KeyboardInterrupt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A cancellation token: clones share one flag. Pass it in
/// [`ConvertOptions::cancel`](crate::ConvertOptions::cancel) and call
/// [`cancel`](Cancel::cancel) from any thread to stop the work.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Flag);

#[derive(Clone, Debug)]
enum Flag {
    Shared(Arc<AtomicBool>),
    /// A flag a signal handler sets (only a static can be touched from one).
    Static(&'static AtomicBool),
}

impl Default for Flag {
    fn default() -> Self {
        Flag::Shared(Arc::new(AtomicBool::new(false)))
    }
}

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A token that reads `flag` (set by a signal handler).
    pub(crate) fn from_static(flag: &'static AtomicBool) -> Cancel {
        Cancel(Flag::Static(flag))
    }

    fn flag(&self) -> &AtomicBool {
        match &self.0 {
            Flag::Shared(f) => f,
            Flag::Static(f) => f,
        }
    }

    /// Ask the work holding this token (or a clone) to stop.
    pub fn cancel(&self) {
        self.flag().store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Cancel::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag().load(Ordering::SeqCst)
    }

    /// [`Error::Interrupted`] once cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(a.check().is_ok());
        b.cancel();
        assert!(a.is_cancelled());
        assert!(matches!(a.check(), Err(Error::Interrupted)));
        assert!(!Cancel::new().is_cancelled());
    }
}
