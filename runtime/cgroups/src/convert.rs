//! Unit conversions between the runtime-spec's (cgroup v1 shaped) values and cgroup v2 files,
//! the same formulas runc uses so a container gets the same weight under either runtime.

use crate::error::CgroupError;

/// cpu.shares (v1, 2..=262144, default 1024) → cpu.weight (v2, 1..=10000, default 100):
/// `weight = 1 + ((shares - 2) * 9999) / 262142`, the linear map of [2, 262144] onto
/// [1, 10000] that runc (libcontainer/cgroups.ConvertCPUSharesToCgroupV2Value) uses.
/// 1024 shares become weight 39. 0 means "unset" and stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The inverse of [`shares_to_weight`]: `shares = 2 + ((weight - 1) * 262142) / 9999`
/// (rounded down; weight 100 → 2597 shares). 0 stays 0.
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(1, 10_000);
    2 + ((weight - 1) * 262_142) / 9999
}

/// blkio.weight (v1, 10..=1000) → io.weight (v2, 1..=10000):
/// `1 + (weight - 10) * 9999 / 990`, as runc's ConvertBlkIOToIOWeightValue. 0 stays 0.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(10, 1000);
    1 + (weight - 10) * 9999 / 990
}

/// The runtime-spec's `memory.swap` is v1's memory+swap total; v2's memory.swap.max is swap
/// alone. Returns the memory.swap.max value (`None` = leave unchanged, `Some(-1)` = "max"),
/// following runc's ConvertMemorySwapToCgroupV2Value:
/// - swap unset or 0 with limit -1: unlimited as well (v1 compatibility);
/// - swap -1: "max"; swap 0: unchanged;
/// - otherwise a memory limit is required and `swap - limit` (≥ 0) is the swap-only limit.
pub fn memory_swap_to_v2(
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<i64>, CgroupError> {
    let limit_v = limit.unwrap_or(0);
    match swap {
        None | Some(0) if limit_v == -1 => Ok(Some(-1)),
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(-1)),
        Some(swap) => {
            if limit_v <= 0 {
                return Err(CgroupError::InvalidResource {
                    field: "memory.swap",
                    value: swap.to_string(),
                    reason: "cgroup v2 cannot set a swap limit without a memory limit".into(),
                });
            }
            if swap < limit_v {
                return Err(CgroupError::InvalidResource {
                    field: "memory.swap",
                    value: swap.to_string(),
                    reason: format!("memory+swap must be at least memory.limit {limit_v}"),
                });
            }
            Ok(Some(swap - limit_v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_weight_map_end_to_end() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(weight_to_shares(100), 2597);
        // Round trip stays within one weight step.
        for w in [1, 39, 100, 5000, 10_000] {
            let back = shares_to_weight(weight_to_shares(w));
            assert!(back.abs_diff(w) <= 1, "{w} -> {back}");
        }
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(memory_swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(memory_swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(memory_swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(memory_swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(memory_swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        assert!(memory_swap_to_v2(Some(50), Some(100)).is_err());
        assert!(memory_swap_to_v2(Some(300), None).is_err());
    }
}
