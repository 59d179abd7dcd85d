//! A cancellation token on a `watch` channel: cancel once, every holder sees it.

use tokio::sync::watch;

/// Cloneable; `cancel()` wakes every `cancelled().await`.
#[derive(Clone, Debug)]
pub struct CancellationToken {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for CancellationToken {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }
}

impl CancellationToken {
    /// A fresh, uncancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancel: every waiter wakes.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Wait until cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which only happens when every token is dropped.
        let _ = rx.wait_for(|c| *c).await;
    }
}
