#!/usr/bin/env python3
"""Where a request's CPU time goes: the server's and PostgreSQL's CPU seconds per request, for the
side-by-side benchmark's operations (Q1, Q2, M1), read from /proc while wrk loads the server.

Seeds one partner with --customers customers x 5 license-based subscriptions on a fresh
PostgreSQL database through the API, then for each operation runs wrk (16 connections,
--seconds, after a 2 s warm-up for the reads) and reads utime + stime of the server process and of
every PostgreSQL process before and after. Both numbers are per completed request; the load
generator's share is what remains of the machine. Run two binaries one after the other to compare
builds (alternate them: runs on a shared VM drift by about 10%).

Usage: bench/cpu_split.py [--bin target/release/partnerhub] [--pg postgres://postgres@127.0.0.1:5432]
                          [--ops Q1,Q2,M1] [--customers 200] [--seconds 8]
Needs wrk and pgrep. Standard-library Python only.
"""
import argparse, os, subprocess

from backends import M1, Q1, Q2, run_wrk, scratch_database, seed, start_server, stop_server, wrk_script
from load import token

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICKS


def postgres_pids():
    out = subprocess.run(["pgrep", "-f", "postgres"], capture_output=True, text=True, timeout=10).stdout
    return {int(pid) for pid in out.split()}


def measured(port, server_pid, script, seconds, connections, warm_up):
    """One wrk run (`backends.run_wrk`) with the CPU seconds of the server process and of every
    PostgreSQL process read right before and right after the measured part (PostgreSQL processes
    that start during it are counted from zero): (run_wrk's result, server ms CPU per request,
    PostgreSQL ms CPU per request)."""
    readings, pids = [], postgres_pids()

    def probe():
        pids.update(postgres_pids())
        readings.append((cpu_seconds([server_pid]), cpu_seconds(pids)))
    result = run_wrk(port, script, seconds, connections, warm_up=warm_up, probe=probe)
    (server_0, pg_0), (server_1, pg_1) = readings
    requests = result[0] * seconds
    return result, 1000 * (server_1 - server_0) / requests, 1000 * (pg_1 - pg_0) / requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/partnerhub")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--ops", default="Q1,Q2,M1")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()

    with scratch_database(args.pg, "ph_cpu") as url:
        server, port = start_server("cpu-split", url, args.bin)
        try:
            tid, customers, subscriptions = seed(port, args.customers)
            tok = token(tid, ["admin_agent"])
            documents = {"Q1": (Q1, {}), "Q2": (Q2, {"ids": customers}), "M1": (M1, {"subscriptions": subscriptions})}
            for op in args.ops.split(","):
                query, extra = documents[op]
                script = f"/tmp/cpu-split-{op}.lua"
                wrk_script(script, tok, query, **extra)
                result, server_ms, pg_ms = measured(port, server.pid, script, args.seconds, 16, op != "M1")
                print(f"{op}: {result[0]:,.0f} req/s; server {server_ms:.3f} ms CPU per request, "
                      f"PostgreSQL {pg_ms:.3f} ms", flush=True)
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
