//! Times `Store::create_rootfs` in-process (no CLI process start): `rootfs_timing ROOT IMAGE N`
//! creates N rootfs of IMAGE (already in the store under ROOT), prints the median and the
//! maximum in microseconds, and removes them again. Used by bench/images.sh.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, image, n] = args.as_slice() else {
        eprintln!("usage: rootfs_timing ROOT IMAGE N");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a number");
        return ExitCode::from(2);
    };
    let store = match images::Store::open(Path::new(root)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("open store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut micros = Vec::with_capacity(n);
    let mut failed = None;
    for i in 0..n {
        let key = format!("timing-{i}");
        let t = Instant::now();
        if let Err(e) = store.create_rootfs(image, &key) {
            failed = Some(e);
            break;
        }
        micros.push(t.elapsed().as_micros());
    }
    for i in 0..n {
        let _ = store.remove_rootfs(&format!("timing-{i}"));
    }
    if let Some(e) = failed {
        eprintln!("create rootfs: {e}");
        return ExitCode::FAILURE;
    }
    micros.sort_unstable();
    let median = micros.get(micros.len() / 2).copied().unwrap_or_default();
    let max = micros.last().copied().unwrap_or_default();
    println!("{median} {max}");
    ExitCode::SUCCESS
}
