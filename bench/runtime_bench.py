"""The timing loop of bench/runtime.sh: one process is a child subreaper, so each container's
init is reparented to it and waited for here. Peak RSS is measured in a separate pass through
GNU time: a child forked from Python would count Python's own pages in its rusage."""
import ctypes, json, os, statistics, subprocess, sys, time

work, runs, berth = sys.argv[1], int(sys.argv[2]), os.path.abspath(sys.argv[3])
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
runtimes = {"berth-runtime": berth, "crun": "/usr/bin/crun", "runc": "/usr/sbin/runc"}
bundle = os.path.join(work, "bundle")


def run(argv, rss_file=None):
    """Run a command; with `rss_file`, through GNU time, returning its peak RSS in KiB."""
    if rss_file:
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
    pid = os.spawnv(os.P_NOWAIT, argv[0], argv)
    _, status, _ = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {status}")
    return int(open(rss_file).read().split()[-1]) if rss_file else 0


def once(name, binary, i, measure_rss=False):
    root = os.path.join(work, "state-" + name)
    cid = f"bench-{name}-{i}"
    pidfile = os.path.join(work, cid + ".pid")
    spec = json.load(open(os.path.join(bundle, "config.json")))
    spec["linux"]["cgroupsPath"] = f"/berth-bench/{name}-{i}"
    json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
    base = [binary, "--root", root]
    rf = os.path.join(work, "rss") if measure_rss else None
    t0 = time.perf_counter()
    rss = run(base + ["create", "--bundle", bundle, "--pid-file", pidfile, cid], rf)
    init = int(open(pidfile).read())
    rss = max(rss, run(base + ["start", cid], rf))
    os.waitpid(init, 0)
    rss = max(rss, run(base + ["delete", cid], rf))
    elapsed = time.perf_counter() - t0
    os.unlink(pidfile)
    return elapsed * 1000, rss / 1024


results = {n: ([], []) for n in runtimes}
for name, binary in runtimes.items():  # warm up caches once
    once(name, binary, "warm")
# Each runtime runs after each of the others equally often: a run pays for what the one
# before it left the kernel to finish (namespaces and cgroups are torn down asynchronously).
order = list(runtimes.items())
for i in range(runs):
    k = i % len(order)
    for name, binary in order[k:] + order[:k]:
        ms, _ = once(name, binary, i)
        results[name][0].append(ms)
for i in range(10):
    for name, binary in runtimes.items():
        results[name][1].append(once(name, binary, f"rss{i}", measure_rss=True)[1])


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


med = {n: statistics.median(r[0]) for n, r in results.items()}
print(f"runs: {runs} each, interleaved; create+start+wait+delete of /bin/true")
print(f"{'runtime':<14} {'median ms':>10} {'p95 ms':>8} {'peak RSS MiB':>13} {'vs crun':>8} {'vs runc':>8}")
for n, (ms, rss) in results.items():
    print(f"{n:<14} {med[n]:>10.2f} {p95(ms):>8.2f} {max(rss):>13.2f} {med[n] / med['crun']:>8.2f} {med[n] / med['runc']:>8.2f}")
