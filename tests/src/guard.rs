//! Cleanup that runs even when a test fails.

type Undo = Box<dyn FnOnce() -> Result<(), String>>;

/// Undo steps run in reverse order when the guard drops, on success and on panic alike.
///
/// Register each object on the line after it exists. A failing undo step is reported on
/// stderr and the rest still run; the suite's leak check catches anything that stayed.
#[derive(Default)]
pub struct Cleanup {
    steps: Vec<(String, Undo)>,
}

impl Cleanup {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `undo` when the guard drops. `what` names the object in failure messages.
    pub fn defer(
        &mut self,
        what: impl Into<String>,
        undo: impl FnOnce() -> Result<(), String> + 'static,
    ) {
        self.steps.push((what.into(), Box::new(undo)));
    }

    /// Run every step now (in reverse), returning the failures.
    pub fn run_now(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        while let Some((what, undo)) = self.steps.pop() {
            if let Err(e) = undo() {
                failures.push(format!("cleanup of {what}: {e}"));
            }
        }
        failures
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for failure in self.run_now() {
            eprintln!("berth-tests: {failure}");
        }
    }
}

/// Run a command for cleanup, treating "already gone" (as judged by `is_gone` on stderr) as success.
pub fn run_quiet(
    cmd: &mut std::process::Command,
    is_gone: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || is_gone(&stderr) {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", stderr.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn steps_run_in_reverse_even_after_a_failure() {
        let order = Rc::new(RefCell::new(Vec::new()));
        {
            let mut g = Cleanup::new();
            for i in 0..3 {
                let o = order.clone();
                g.defer(format!("step {i}"), move || {
                    o.borrow_mut().push(i);
                    if i == 1 {
                        Err("boom".into())
                    } else {
                        Ok(())
                    }
                });
            }
        }
        assert_eq!(*order.borrow(), vec![2, 1, 0]);
    }
}
