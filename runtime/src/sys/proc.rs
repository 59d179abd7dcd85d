//! Reading `/proc/PID/stat`: process state and start time.

use std::io;

/// The state letter of `/proc/PID/stat`, as far as the runtime cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessStatus {
    /// Exited, not yet reaped.
    Zombie,
    /// Anything else.
    Live,
}

/// The fields of `/proc/PID/stat` the runtime uses.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    /// Zombie or not.
    pub status: ProcessStatus,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
}

/// Read and parse `/proc/PID/stat`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))
}

/// Parse the text of `/proc/PID/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state)
    let state = fields.first()?;
    let start_time = fields.get(19)?.parse().ok()?;
    let status = if *state == "Z" || *state == "X" {
        ProcessStatus::Zombie
    } else {
        ProcessStatus::Live
    };
    Some(Stat { status, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let text =
            "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        let st = parse_stat(text).unwrap();
        assert_eq!(st.start_time, 987654);
        assert_eq!(st.status, ProcessStatus::Live);
        let z = parse_stat("7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0").unwrap();
        assert_eq!(z.status, ProcessStatus::Zombie);
    }

    #[test]
    fn own_stat_is_readable() {
        let st = stat(std::process::id() as i32).unwrap();
        assert!(st.start_time > 0);
    }
}
