//! Reading netd's nftables table back from the kernel with the `nft` tool: which chains an ENI's
//! address is sent to, the rules in them, and the ports published to it. The parsing is pure
//! (unit-tested on `nft`'s JSON and text); `Nft` only runs `nft list …`.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// Why reading the ruleset failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be run.
    #[error("running {binary} list {what}")]
    Spawn {
        /// The binary.
        binary: String,
        /// What was listed.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `nft` refused (a missing table, map or chain).
    #[error("nft list {what}: {stderr}")]
    Failed {
        /// What was listed.
        what: String,
        /// nft's message.
        stderr: String,
    },
    /// `nft -j` printed something that is not JSON.
    #[error("nft -j list {what}: not JSON: {source}")]
    Json {
        /// What was listed.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// The `nft` binary and netd's table (family `inet`).
#[derive(Debug, Clone)]
pub struct Nft {
    /// The binary (`nft` on PATH by default).
    pub binary: PathBuf,
    /// The table's name (netd's `table` key; `berth` by default).
    pub table: String,
}

impl Nft {
    fn list(&self, json: bool, kind: &str, name: &str) -> Result<String, NftError> {
        let what = format!("{kind} inet {} {name}", self.table);
        let mut cmd = Command::new(&self.binary);
        if json {
            cmd.arg("-j");
        }
        let out = cmd
            .args(["list", kind, "inet", &self.table, name])
            .output()
            .map_err(|source| NftError::Spawn {
                binary: self.binary.display().to_string(),
                what: what.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(NftError::Failed {
                what,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `nft -j list {map|set|chain} inet TABLE NAME`.
    pub fn list_json(&self, kind: &str, name: &str) -> Result<Value, NftError> {
        let text = self.list(true, kind, name)?;
        serde_json::from_str(&text).map_err(|source| NftError::Json {
            what: format!("{kind} inet {} {name}", self.table),
            source,
        })
    }

    /// The rules of chain `name`, one line each, as `nft list chain` prints them.
    pub fn chain_rules(&self, name: &str) -> Result<Vec<String>, NftError> {
        Ok(chain_rules(&self.list(false, "chain", name)?, name))
    }
}

/// The objects of one kind (`map`, `set`, `rule`) in an `nft -j` answer.
fn objects<'a>(v: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |o| o.get(kind))
}

/// `(set, chain)` of each rule of a dispatch chain (`dispatch_in`/`dispatch_out`): `ip
/// daddr @SET goto CHAIN`, members of SET go to CHAIN.
pub fn dispatch_rules(chain: &Value) -> Vec<(String, String)> {
    objects(chain, "rule")
        .filter_map(|r| {
            let expr = r["expr"].as_array()?;
            let set = expr
                .iter()
                .find_map(|x| x["match"]["right"].as_str()?.strip_prefix('@'))?;
            let target = expr.iter().find_map(|x| {
                x["goto"]["target"]
                    .as_str()
                    .or_else(|| x["jump"]["target"].as_str())
            })?;
            Some((set.to_owned(), target.to_owned()))
        })
        .collect()
}

/// The chains a chain's rules `jump` or `goto`, in order.
pub fn jump_targets(chain: &Value) -> Vec<String> {
    objects(chain, "rule")
        .flat_map(|r| r["expr"].as_array().into_iter().flatten())
        .filter_map(|x| {
            x["jump"]["target"]
                .as_str()
                .or_else(|| x["goto"]["target"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

/// The elements of a set, as text.
pub fn set_elements(set: &Value) -> Vec<String> {
    objects(set, "set")
        .flat_map(|s| s["elem"].as_array().into_iter().flatten())
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// `(host port, task port)` of each element of a publish map (`pub_tcp`/`pub_udp`:
/// `host port : task ip . task port`) that points at `ip`.
pub fn published_to(map: &Value, ip: &str) -> Vec<(u64, u64)> {
    objects(map, "map")
        .flat_map(|m| m["elem"].as_array().into_iter().flatten())
        .filter_map(|e| {
            let concat = e[1]["concat"].as_array()?;
            if concat.first()? != ip {
                return None;
            }
            Some((e[0].as_u64()?, concat.get(1)?.as_u64()?))
        })
        .collect()
}

/// The rule lines of chain `name` in `nft list chain` text output.
pub fn chain_rules(text: &str, name: &str) -> Vec<String> {
    let header = format!("chain {name} {{");
    let mut rules = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line == header {
            inside = true;
        } else if inside && line == "}" {
            break;
        } else if inside && !line.is_empty() && !line.starts_with("type ") {
            rules.push(line.to_owned());
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn a_dispatch_chain_names_each_combination_set_and_chain() {
        let c = j(
            r#"{"nftables": [{"metainfo": {}}, {"chain": {"name": "dispatch_in"}},
            {"rule": {"chain": "dispatch_in", "expr": [{"match": {"op": "==",
              "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@c_1"}},
              {"goto": {"target": "c_1_in"}}]}},
            {"rule": {"chain": "dispatch_in", "expr": [{"match": {"op": "==",
              "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@c_2"}},
              {"jump": {"target": "c_2_in"}}]}},
            {"rule": {"chain": "dispatch_in", "expr": [{"drop": null}]}}]}"#,
        );
        assert_eq!(
            dispatch_rules(&c),
            vec![
                ("c_1".to_owned(), "c_1_in".to_owned()),
                ("c_2".to_owned(), "c_2_in".to_owned())
            ]
        );
    }

    #[test]
    fn a_combination_chain_jumps_to_its_groups() {
        let c = j(r#"{"nftables": [{"chain": {"name": "c_1_in"}},
            {"rule": {"chain": "c_1_in", "expr": [{"jump": {"target": "g_web_in"}}]}},
            {"rule": {"chain": "c_1_in", "expr": [{"jump": {"target": "g_app_in"}}]}},
            {"rule": {"chain": "c_1_in", "expr": [{"drop": null}]}}]}"#);
        assert_eq!(jump_targets(&c), vec!["g_web_in", "g_app_in"]);
    }

    #[test]
    fn published_ports_are_those_pointing_at_the_address() {
        let m = j(
            r#"{"nftables": [{"map": {"name": "pub_tcp", "map": "ipv4_addr . inet_service",
            "elem": [[18080, {"concat": ["10.1.0.4", 8080]}], [18081, {"concat": ["10.1.0.9", 80]}]]}}]}"#,
        );
        assert_eq!(published_to(&m, "10.1.0.4"), vec![(18080, 8080)]);
        let empty = j(r#"{"nftables": [{"map": {"name": "pub_udp"}}]}"#);
        assert!(published_to(&empty, "10.1.0.4").is_empty());
    }

    #[test]
    fn chain_text_gives_one_line_per_rule() {
        let text =
            "table inet t1 {\n\tchain g_web_in {\n\t\tip saddr @g_web tcp dport 8080 accept\n\
                    \t\tip saddr 10.0.0.0/8 meta l4proto icmp accept\n\t}\n}\n";
        assert_eq!(
            chain_rules(text, "g_web_in"),
            vec![
                "ip saddr @g_web tcp dport 8080 accept",
                "ip saddr 10.0.0.0/8 meta l4proto icmp accept"
            ]
        );
        assert!(chain_rules("table inet t1 {\n\tchain g_x_in {\n\t}\n}\n", "g_x_in").is_empty());
    }

    #[test]
    fn set_elements_are_text() {
        let s =
            j(r#"{"nftables": [{"set": {"name": "g_web", "elem": ["10.1.0.4", "10.1.0.5"]}}]}"#);
        assert_eq!(set_elements(&s), vec!["10.1.0.4", "10.1.0.5"]);
    }
}
