//! `corun::signal::notify`: OS signals as channels. Each test uses its own signals,
//! since signals are process-wide and the tests run in parallel.

use corun::signal::notify;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn raise(sig: i32) {
    // SAFETY: raise(3) has no preconditions; every signal raised here was passed to
    // `notify` first, so it is caught rather than acting by default.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

fn kill_self(sig: i32) {
    // SAFETY: kill(2) on our own pid with a caught signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

#[test]
fn a_raised_signal_arrives_and_select_times_out_before_it() {
    let rx = notify(&[libc::SIGUSR1]).unwrap();
    // Nothing raised yet: the select's timeout arm runs.
    let early = corun::select! {
        recv(rx) -> s => Some(s.unwrap()),
        default(Duration::from_millis(50)) => None,
    };
    assert_eq!(early, None);
    for _ in 0..3 {
        raise(libc::SIGUSR1);
    }
    // raise(3) runs the handler before it returns, so all three are counted.
    for _ in 0..3 {
        let got = corun::select! {
            recv(rx) -> s => s.unwrap(),
            default(LONG) => panic!("SIGUSR1 was not delivered within {LONG:?}"),
        };
        assert_eq!(got, libc::SIGUSR1);
    }
    assert!(rx.try_recv().is_err(), "more SIGUSR1 than were raised");
}

#[test]
fn overlapping_notify_calls_all_receive() {
    let a = notify(&[libc::SIGUSR2]).unwrap();
    let b = notify(&[libc::SIGUSR2, libc::SIGWINCH]).unwrap();
    kill_self(libc::SIGUSR2);
    assert_eq!(a.recv_timeout(LONG).unwrap(), libc::SIGUSR2);
    assert_eq!(b.recv_timeout(LONG).unwrap(), libc::SIGUSR2);
    raise(libc::SIGWINCH);
    assert_eq!(b.recv_timeout(LONG).unwrap(), libc::SIGWINCH);
    // `a` did not ask for SIGWINCH; the relay sends to every subscriber at once, so
    // by the time `b` had it, `a` would have it too.
    assert!(a.try_recv().is_err());
}

#[test]
fn a_coroutine_selects_on_signals_on_its_own_runtime() {
    let rt = corun::Runtime::builder().workers(2).build().unwrap();
    let rx = notify(&[libc::SIGURG]).unwrap();
    let (ready_tx, ready_rx) = corun::chan::bounded::<()>(1);
    let waiter = rt.spawn(move || {
        let mut timeouts = 0;
        loop {
            corun::select! {
                recv(rx) -> s => return (s.unwrap(), timeouts),
                default(Duration::from_millis(20)) => {
                    timeouts += 1;
                    let _ = ready_tx.try_send(());
                    assert!(timeouts < 1000, "SIGURG never arrived");
                }
            }
        }
    });
    ready_rx.recv().unwrap(); // the waiter has timed out once at least
    rt.spawn(|| raise(libc::SIGURG)).join().unwrap();
    let (sig, timeouts) = waiter.join().unwrap();
    assert_eq!(sig, libc::SIGURG);
    assert!(timeouts >= 1);
}

#[test]
fn a_dropped_receiver_is_forgotten_and_later_ones_still_receive() {
    let first = notify(&[libc::SIGHUP]).unwrap();
    drop(first);
    raise(libc::SIGHUP); // caught (the handler stays), delivered to nobody
    let second = notify(&[libc::SIGHUP]).unwrap();
    raise(libc::SIGHUP);
    assert_eq!(second.recv_timeout(LONG).unwrap(), libc::SIGHUP);
}

#[test]
fn signals_that_cannot_be_received_are_refused_with_a_reason() {
    for sig in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        0,
        -1,
        200,
    ] {
        let e = notify(&[sig]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}");
        assert!(e.to_string().contains(&sig.to_string()), "{e}");
    }
    let e = notify(&[]).unwrap_err();
    assert!(e.to_string().contains("no signals"), "{e}");
}
