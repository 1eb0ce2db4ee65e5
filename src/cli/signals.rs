//! The command line's signal handling (not the library's): SIGINT, SIGTERM and SIGHUP set
//! a flag that the CLI's [`Cancel`] token reads, so that temporary files are removed and
//! the process then exits with 128 + the signal's number, as a shell expects of a command
//! that a signal stopped (130 for Ctrl-C: a `for` loop of conversions stops).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::cancel::Cancel;


static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that interrupted us (SIGINT when none was recorded).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(libc::SIGINT);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNAL.store(sig, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Route SIGINT / SIGTERM / SIGHUP to a flag instead of killing the process, so that
/// temporary files are removed and the process then exits with 128 + the signal's
/// number, as a shell expects of a command that a signal stopped (130 for Ctrl-C: a
/// `for` loop of conversions stops). Safe to call more than once.
pub(crate) fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `on_signal` only stores to atomics, which is async-signal-safe; the
            // sigaction struct is zeroed (no flags, empty mask) apart from the handler.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// The exit code after an interruption: 128 + the signal's number.
pub(crate) fn interrupted_exit_code() -> u8 {
    (128 + SIGNAL.load(Ordering::SeqCst)).clamp(0, 255) as u8
}

/// Process-wide signal dispositions of the `ckptconv` binary (not of the library):
/// - SIGPIPE back to its default, so that `ckptconv inspect … | head` ends quietly when
///   `head` closes the pipe, as `cat` does, instead of failing on every later write;
/// - SIGXFSZ ignored, so that a write past `ulimit -f` fails with EFBIG, an ordinary
///   write error that removes the temporary files, instead of killing the process.
pub(crate) fn set_cli_signal_dispositions() {
    // SAFETY: setting a signal to SIG_DFL or SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The token the command line passes to its work: cancelled by a signal once
/// [`install_interrupt_handler`] has run.
pub(crate) fn token() -> Cancel {
    Cancel::from_static(&INTERRUPTED)
}
