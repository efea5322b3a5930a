//! One way to take a lock.
//!
//! A leaf: calls no other room.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a thread panicked while holding it: every lock in swarmpack guards
/// plain bookkeeping that a panic cannot leave half-written, and a stream must go on.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
