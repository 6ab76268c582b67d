//! Tells systemd (`Type=notify`) where the service is: READY=1 once listening, RELOADING=1 and
//! READY=1 around a reload, STOPPING=1 when a drain starts. A no-op outside systemd.

use sd_notify::NotifyState;

pub fn ready() {
    notify(&[NotifyState::Ready]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// RELOADING=1 with the monotonic time systemd (`Type=notify-reload`) asks for.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
