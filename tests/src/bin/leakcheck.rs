//! `bt-leakcheck`: the suite's last step. Lists every object a test or the product left on
//! this host and exits non-zero if there is one.

use std::process::ExitCode;

fn main() -> ExitCode {
    let found = berth_tests::leaks::scan();
    if found.is_empty() {
        println!("leak check: nothing left behind");
        return ExitCode::SUCCESS;
    }
    for f in &found {
        eprintln!("leak: {f}");
    }
    eprintln!("leak check: {} objects left behind", found.len());
    ExitCode::FAILURE
}
