#!/usr/bin/env python3
"""Profiles the side-by-side benchmark's operations (Q1, Q2, M1) one at a time, in-process.

Needs a build with the sampler: `cargo build --release --features profiling`. Seeds one partner
with --customers customers x 5 license-based subscriptions on a fresh PostgreSQL (or SQLite)
database through the API, then for each operation starts the server with PARTNERHUB_PROFILE set,
loads it with wrk for --seconds, stops it with SIGTERM (the server then writes <out>/<op>.svg, a
flame graph, and <out>/<op>.txt, the functions with the most samples) and prints the top of
the text profile.

Usage: bench/profile.py [--bin target/release/partnerhub] [--pg postgres://postgres@127.0.0.1:5432]
                        [--sqlite] [--ops Q1,M1] [--customers 200] [--seconds 10] [--out /tmp/profile]
Needs wrk. Standard-library Python only.
"""
import argparse, os, tempfile

from backends import M1, Q1, Q2, run_wrk, scratch_database, scratch_sqlite, seed, start_server, stop_server, wrk_script
from load import token

OPS = {"Q1": Q1, "Q2": Q2, "M1": M1}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/partnerhub")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--sqlite", action="store_true", help="profile on SQLite instead of PostgreSQL")
    ap.add_argument("--ops", default="Q1,Q2,M1")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--out", default=f"{tempfile.gettempdir()}/profile")
    ap.add_argument("--top", type=int, default=30, help="lines of each text profile to print")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    database = scratch_sqlite("ph_profile") if args.sqlite else scratch_database(args.pg, "ph_profile")
    with database as url:
        server, port = start_server("profile-seed", url, args.bin)
        try:
            tid, customers, subscriptions = seed(port, args.customers)
        finally:
            stop_server(server)
        tok = token(tid, ["admin_agent"])
        extras = {"Q1": {}, "Q2": {"ids": customers}, "M1": {"subscriptions": subscriptions}}
        for op in args.ops.split(","):
            prefix = os.path.join(args.out, op)
            server, port = start_server(f"profile-{op}", url, args.bin, {"PARTNERHUB_PROFILE": prefix})
            try:
                script = f"{prefix}.lua"
                wrk_script(script, tok, OPS[op], **extras[op])
                rps, p50, p99, non2xx, conflicts, errors = run_wrk(
                    port, script, args.seconds, args.connections, warm_up=op != "M1")
            finally:
                stop_server(server)
            print(f"== {op}: {rps:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, non-2xx {non2xx}, "
                  f"VERSION_CONFLICT {conflicts}, other errors {errors}; {prefix}.svg, {prefix}.txt", flush=True)
            try:
                with open(prefix + ".txt") as f:
                    print("".join(f.readlines()[: args.top]), flush=True)
            except OSError as err:
                print(f"   no profile written ({err}): was the binary built with --features profiling?")


if __name__ == "__main__":
    main()
