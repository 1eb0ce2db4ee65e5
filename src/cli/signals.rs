//! The command line's signal handling (not the library's): SIGINT, SIGTERM and SIGHUP set
//! a flag that the CLI's [`Cancel`] token reads, so that temporary files are removed and
//! the process then dies of that same signal (see [`die_if_interrupted`]), which a shell
//! reports as 128 + its number (130 for Ctrl-C) and which stops a `for` loop.

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

/// After a signal has stopped the work and its temporary files are gone: die of that
/// signal, with its default disposition. A shell tells "killed by SIGINT" from "exited
/// with 130": bash and others stop a `for` loop only for the first (the child's exit
/// status is how they learn the user pressed Ctrl-C, when the child catches it), so a
/// plain exit would let the loop run on. Returns only when no signal was received (or,
/// in theory, when raising it failed).
pub(crate) fn die_if_interrupted() {
    if !INTERRUPTED.load(Ordering::SeqCst) {
        return;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let sig = SIGNAL.load(Ordering::SeqCst);
    // SAFETY: SIG_DFL installs no handler code; unblocking and raising a signal at our
    // own process is what it is for.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
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
