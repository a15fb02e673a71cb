"""The table ``make bench`` prints at the end."""

REGISTER = "register"
DEVICES = "devices"
SERVERS = ("service", "bare", "dpn")
TARGET_PATCH_RATIO = 0.35
TARGET_PATCH_P99_MS = 30.0
TARGET_DPN_RATIO = 5.0
TARGET_PAGE_RATIO = 0.35
NOISY_SHARE = 0.10
PSYCOPG_CACHED_LENGTH = 4096  # MAX_CACHED_STATEMENT_LENGTH in psycopg/_queries.py


def row_label(row):
    if row == REGISTER:
        return "token registration"
    if row == DEVICES:
        return "device registration (POST /api/devices)"
    return f"page of 100+user, {int(row.split('@')[1]):,} tokens"


def report(results, args):
    width = 132
    print("\n" + "=" * width)
    print(f"{'row':<34} {'W':>2} {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'timeout':>8} {'÷bare':>6} {'÷dpn':>6} {'cpu ms/req':>11} "
          f"{'pg ms/req':>10} {'other':>6}")
    noisy = False
    for result in results:
        printed = set()  # the bare app's page is the baseline of every list row: once
        for row, servers in result["rows"].items():
            for name in SERVERS:
                if name not in servers or id(servers[name]) in printed:
                    continue
                printed.add(id(servers[name]))
                noisy = _print_figure(row, result["workers"], name, servers) or noisy
        for key, size in result.get("response_bytes", {}).items():
            print(f"   response bytes {key}: {size}")
        for row, milliseconds in result.get("page_alone_ms", {}).items():
            print(f"   one page alone (no wrk load; median of 3), {row}: {milliseconds:.1f} ms")
        for row, count in result.get("queries", {}).items():
            runs = f" (runs: {count['per_request']})" if "per_request" in count else ""
            commits = (f"+ {count['commits']} commit(s)" if "commits" in count
                       else "in autocommit (each write commits on its own)")
            print(f"   queries per request, {row}: {count['statements']} statements "
                  f"{commits}{runs}{_conversion(count)}")
        _print_targets(result, args)
    print("   ÷bare, ÷dpn: the service's requests/s over the bare app's, over DPN's; cpu "
          "ms/req: the server's CPU per request; pg: its PostgreSQL backends'; other: "
          "share of the machine used by processes that are not part of the run")
    if noisy:
        print(f"   WARNING: other processes used more than {NOISY_SHARE:.0%} of the machine "
              "during some runs; those figures understate every server (try --repeat 3)")
    print("=" * width, flush=True)


def _print_figure(row, workers, name, servers):
    """One line of the table; whether other processes loaded the machine meanwhile."""
    stats = servers[name]
    latency = stats["latency_us"]
    ratios = [f"{servers[key]:.3f}" if name == "service" and key in servers else ""
              for key in ("ratio_bare", "ratio_dpn")]
    cpu = stats.get("cpu") or {}
    timeouts = stats["errors"]["timeout"]
    # wrk keeps no latency for a request it gave up on: with timeouts, p50/p99 would lie.
    p50, p99 = (("n/a", "n/a") if timeouts else
                (f"{latency['p50'] / 1000:.2f}", f"{latency['p99'] / 1000:.2f}"))
    print(f"{row_label(row):<34} {workers:>2} {name:<8} {stats['rps']:>9.1f} "
          f"{p50:>8} {p99:>8} {stats['non2xx']:>8} {timeouts:>8} {ratios[0]:>6} {ratios[1]:>6} "
          f"{cpu.get('server_ms', 0):>11.2f} {cpu.get('postgres_ms', 0):>10.2f} "
          f"{cpu.get('other_share', 0):>6.0%}")
    return cpu.get("other_share", 0) > NOISY_SHARE


def _print_targets(result, args):
    """The issue's targets, each met or MISSED (at 16 connections, where they are set)."""
    if args.connections != 16:
        return
    checks = []
    register = result["rows"].get(REGISTER, {})
    if "ratio_bare" in register:
        checks.append(_check("PATCH ÷bare", register["ratio_bare"], TARGET_PATCH_RATIO))
        p99 = register["service"]["latency_us"]["p99"] / 1000
        checks.append(f"PATCH p99 {p99:.2f} ms < {TARGET_PATCH_P99_MS:.0f} ms "
                      f"{'met' if p99 < TARGET_PATCH_P99_MS else 'MISSED'}")
    if "ratio_dpn" in register:
        checks.append(_check("PATCH ÷dpn", register["ratio_dpn"], TARGET_DPN_RATIO))
    for row, servers in result["rows"].items():
        if row.startswith("list@") and "ratio_bare" in servers:
            checks.append(_check(f"{row_label(row)} ÷bare", servers["ratio_bare"],
                                 TARGET_PAGE_RATIO))
    if checks:
        print(f"   targets (W={result['workers']}): " + "; ".join(checks))


def _check(name, ratio, target):
    return f"{name} {ratio:.3f} >= {target} {'met' if ratio >= target else 'MISSED'}"


def _conversion(count):
    """psycopg caches how it converts a query's placeholders only up to this length: a
    longer statement pays the conversion on every execution."""
    if "longest" not in count:
        return ""
    cached = "within" if count["longest"] <= PSYCOPG_CACHED_LENGTH else "OVER"
    return (f"; longest statement {count['longest']:,} characters, {cached} psycopg's "
            f"conversion cache ({PSYCOPG_CACHED_LENGTH:,})")
