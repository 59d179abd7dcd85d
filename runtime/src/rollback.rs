//! Undo steps for a command that fails halfway: registered right after each object exists,
//! run in reverse on drop unless committed.

type Undo = Box<dyn FnOnce() -> Result<(), String>>;

/// Undo steps, run in reverse when dropped uncommitted.
#[derive(Default)]
pub struct Rollback(Vec<(&'static str, Undo)>);

impl Rollback {
    /// Register `undo` for the object `step` just created.
    pub fn on_failure(
        &mut self,
        step: &'static str,
        undo: impl FnOnce() -> Result<(), String> + 'static,
    ) {
        self.0.push((step, Box::new(undo)));
    }

    /// Success: keep everything.
    pub fn commit(mut self) {
        self.0.clear();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        while let Some((step, undo)) = self.0.pop() {
            if let Err(e) = undo() {
                crate::log::warn(&format!("rollback: {step}: {e}"));
            }
        }
    }
}
