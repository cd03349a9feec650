//! How many connections may be open: in all, and from one IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Counts open connections, shared by every listener of a kind.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Counts>,
    /// When a refusal was last logged (seconds since the epoch): a flood logs one line a minute, not one per
    /// connection.
    last_warning: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// An admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::new(Counts::default()),
            last_warning: AtomicU64::new(0),
        })
    }

    /// A place for a new connection from `ip`, or None when either limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let admitted = {
            let mut counts = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
            // Loopback is exempt from the per-address limit: a local reverse proxy (sslh or a TCP proxy in front
            // of direct TLS, as Snikket documents) makes every client appear to come from it.
            let over_per_ip = from_ip >= self.max_per_ip && !ip.is_loopback();
            if counts.total >= self.max_total || over_per_ip {
                false
            } else {
                counts.total += 1;
                counts.per_ip.insert(ip, from_ip + 1);
                true
            }
        };
        if admitted {
            return Some(ConnectionSlot {
                limiter: Arc::clone(self),
                ip,
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %ip,
                max_total = self.max_total,
                max_per_ip = self.max_per_ip,
                "refusing connections: too many open (logged once a minute)"
            );
        }
        None
    }

    /// Open connections in all.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_in_all() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none(), "per IP");
        let _b1 = limiter.admit(b).unwrap();
        assert!(limiter.admit(b).is_none(), "in all");
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(b).is_some());
    }

    #[test]
    fn loopback_has_no_per_address_limit() {
        let limiter = ConnectionLimiter::new(10, 2);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..5).map(|_| limiter.admit(local).unwrap()).collect();
        assert_eq!(slots.len(), 5);
    }
}
