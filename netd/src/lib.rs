//! Per-task network namespaces, veth ENIs, IPAM and security groups (issue 5).
