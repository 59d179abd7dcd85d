//! berth-runtime: a runc-compatible OCI runtime (issue 3).

fn main() -> std::process::ExitCode {
    eprintln!("berth-runtime: not built yet");
    std::process::ExitCode::FAILURE
}
