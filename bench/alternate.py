#!/usr/bin/env python3
"""Compares builds on one seeded database: seeds one partner (--customers x 5 subscriptions) through
the first binary, then runs each operation against every binary in turn, --rounds times
(alternating, since runs on a shared VM drift), printing req/s and the server's and PostgreSQL's
CPU per request as bench/cpu_split.py reads them.

M1 starts each run from the versions the subscriptions have then (read through the API); reads
run after a 2 s warm-up.

With --sqlite, the database is a fresh SQLite file instead (PostgreSQL's CPU is then not printed).

Usage: bench/alternate.py --bin A --bin B [--pg postgres://postgres@127.0.0.1:5432 | --sqlite]
                          [--ops Q1,Q2,M1] [--customers 200] [--seconds 8] [--rounds 2] [--connections 16]
Needs wrk and pgrep. Standard-library Python only.
"""
import argparse

from backends import M1, Q1, Q2, scratch_database, scratch_sqlite, seed, start_server, stop_server, wrk_script
from cpu_split import measured
from load import Client, token


def current_versions(port, tok, subscriptions):
    """The subscriptions with the versions they have now (an earlier run bumped them), read through
    the API 50 at a time."""
    client = Client(f"http://127.0.0.1:{port}/graphql", tok)
    out = []
    for n in range(0, len(subscriptions), 50):
        ids = [s["id"] for s in subscriptions[n:n + 50]]
        nodes = client.gql("query($ids: [ID!]!) { nodes(ids: $ids) { ... on Subscription { id version } } }",
                           {"ids": ids})["nodes"]
        out.extend({"id": node["id"], "version": node["version"]} for node in nodes)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--ops", default="Q1,Q2,M1")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    database = scratch_sqlite("ph_alt") if args.sqlite else scratch_database(args.pg, "ph_alt")
    with database as url:
        server, port = start_server("alternate-seed", url, args.bin[0])
        try:
            tid, customers, subscriptions = seed(port, args.customers)
        finally:
            stop_server(server)
        tok = token(tid, ["admin_agent"])
        documents = {"Q1": (Q1, {}), "Q2": (Q2, {"ids": customers}), "M1": (M1, {"subscriptions": subscriptions})}
        for op in args.ops.split(","):
            query, extra = documents[op]
            script = f"/tmp/alternate-{op}.lua"
            wrk_script(script, tok, query, **extra)
            for round_ in range(args.rounds):
                for n, binary in enumerate(args.bin):
                    server, port = start_server(f"alternate-{n}", url, binary)
                    try:
                        if op == "M1":
                            wrk_script(script, tok, query, subscriptions=current_versions(port, tok, subscriptions))
                        result, server_ms, pg_ms = measured(
                            port, server.pid, script, args.seconds, args.connections, op != "M1")
                    finally:
                        stop_server(server)
                    conflicts = f"; {result[4]} VERSION_CONFLICT" if op == "M1" else ""
                    pg = "" if args.sqlite else f", PostgreSQL {pg_ms:.3f} ms"
                    print(f"{op} round {round_ + 1} bin {n}: {result[0]:,.0f} req/s; server {server_ms:.3f} ms CPU "
                          f"per request{pg}{conflicts}", flush=True)


if __name__ == "__main__":
    main()
