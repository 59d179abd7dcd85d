//! A few task network namespaces made ahead of time.
//!
//! Making a namespace (unshare, sysctl, `lo` up) is the largest step of an attach, and the
//! kernel's cost for it grows with the number of namespaces alive. A filler thread keeps
//! `size` namespaces ready; they are held only by open files, not pinned anywhere, so a netd
//! that dies (even by SIGKILL) leaves none of them behind. An attach takes one and pins it
//! under the ENI's name, one bind mount. When the pool is empty (a burst of attaches) the
//! attach makes its namespace itself, as without a pool.
//!
//! The filler waits while an attach is in progress ([`NetnsPool::hold_off`]): making a
//! namespace takes the kernel's RTNL lock and CPU for a while (longer the more namespaces are
//! alive), and run beside an attach it slowed every netlink step of that attach. It refills
//! afterwards, while the caller uses its ENI or detaches one (mostly waiting for RCU).

use crate::sys::netlink::Rtnl;
use crate::sys::netns::{self, NetnsFailure};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A namespace ready for an ENI: configured, with a netlink socket inside it.
pub struct Ready {
    file: File,
    rtnl: Rtnl,
}

impl Ready {
    /// Pin the namespace at `target`. On failure nothing is left at `target` and the
    /// namespace goes with `self`.
    pub fn claim(self, target: &Path) -> Result<(File, Rtnl), NetnsFailure> {
        netns::pin(&self.file, target).map(|()| (self.file, self.rtnl))
    }
}

struct State {
    ready: Vec<Ready>,
    stop: bool,
    /// Attaches in progress: the filler waits for none.
    holds: usize,
}

struct Shared {
    size: usize,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a Vec that is still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool and its filler thread. Dropping it stops the thread; the namespaces still
/// waiting go with their files.
pub struct NetnsPool {
    shared: Arc<Shared>,
    filler: Option<std::thread::JoinHandle<()>>,
}

impl NetnsPool {
    /// Keep `size` namespaces ready (0: no pool, no thread).
    pub fn start(size: usize) -> NetnsPool {
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(State {
                ready: Vec::new(),
                stop: false,
                holds: 0,
            }),
            wake: Condvar::new(),
        });
        let filler = (size > 0)
            .then(|| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("netd-netns-pool".into())
                    .spawn(move || fill(&s))
                    .map_err(|e| tracing::warn!(error = %e, "no namespace pool: spawn filler"))
                    .ok()
            })
            .flatten();
        NetnsPool { shared, filler }
    }

    /// A ready namespace, if one is waiting. The filler replaces it once no attach holds it
    /// off.
    pub fn take(&self) -> Option<Ready> {
        let taken = self.shared.lock().ready.pop();
        self.shared.wake.notify_all();
        taken
    }

    /// Keep the filler from starting a namespace until the returned guard is dropped (one
    /// already being made is finished).
    pub fn hold_off(&self) -> HoldOff {
        self.shared.lock().holds += 1;
        HoldOff {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// See [`NetnsPool::hold_off`].
pub struct HoldOff {
    shared: Arc<Shared>,
}

impl Drop for HoldOff {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.holds = st.holds.saturating_sub(1);
        drop(st);
        self.shared.wake.notify_all();
    }
}

impl Drop for NetnsPool {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.filler.take() {
            let _ = t.join();
        }
    }
}

fn fill(s: &Shared) {
    let mut failures = 0u32;
    loop {
        {
            let mut st = s.lock();
            while !st.stop && (st.ready.len() >= s.size || st.holds > 0) {
                st = s.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop {
                return;
            }
        }
        match netns::create_unpinned() {
            Ok((file, rtnl)) => {
                failures = 0;
                s.lock().ready.push(Ready { file, rtnl });
            }
            Err(e) => {
                // Attaches still work without the pool; back off so a broken host is not
                // hammered, and stop trying after a while.
                failures += 1;
                tracing::warn!(op = e.op, error = %e.source, "pool namespace");
                if failures >= 5 {
                    tracing::warn!("namespace pool disabled after repeated failures");
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(failures)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ready(pool: &NetnsPool) -> usize {
        pool.shared.lock().ready.len()
    }

    fn wait_for(pool: &NetnsPool, n: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if ready(pool) == n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn the_filler_waits_while_an_attach_holds_it_off() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let pool = NetnsPool::start(1);
        assert!(wait_for(&pool, 1), "the pool fills");
        let hold = pool.hold_off();
        assert!(pool.take().is_some());
        // A namespace takes milliseconds to make: left free, the filler would be done.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(ready(&pool), 0, "no refill while held off");
        drop(hold);
        assert!(wait_for(&pool, 1), "refilled once the hold is gone");
    }
}
