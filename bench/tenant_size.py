#!/usr/bin/env python3
"""Tenant-size benchmark for partnerhub (issue 9, item 2: cost independent of tenant size).

Seeds a PostgreSQL database directly with SQL (fast: no API round trips): one small partner with
100 customers, one big partner with 50,000 (ACTIVE RESELLER relationships, two license-based CSP
subscriptions per customer), and one customer of the big partner with 5,000 subscriptions. Then it
runs the release server on that database and measures, for the small and the big partner:

  Q2  customer(id:) { id companyName subscriptions(first: 10) { nodes { id } } }  (cycling customers)
  M1  updateSubscription(quantity + 1, expectedVersion)  (each client owns its subscriptions and
      carries their versions from the answers, so no VERSION_CONFLICT is expected)
  Q1  viewer { partner { customers(first: 50) { nodes { id companyName } } } }  (list, for comparison)
  Q3  customers(first: 50) { nodes { id companyName } }  (the top-level list: visibility alone)

Usage (from the repository root, after `cargo build --release`):
  bench/tenant_size.py [--pg postgres://postgres@127.0.0.1:5432] [--db ph_tenant_bench]
                       [--big 50000] [--small 100] [--seconds 10] [--clients 4] [--no-seed]
                       [--ops q2,m1,q1,q3]

The server runs with PARTNERHUB_TENANT_BUDGET=0 (no cost budget) and is stopped at the end.
Standard library only; needs `psql` on the PATH.
"""
import argparse, os, subprocess, sys, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Client, token  # noqa: E402

import base64  # noqa: E402

SMALL_TID = "10000000-0000-4000-8000-000000000001"
SMALL_ID = "10000000-0000-4000-8000-0000000000a1"
BIG_TID = "20000000-0000-4000-8000-000000000002"
BIG_ID = "20000000-0000-4000-8000-0000000000b2"

Q2 = "query($id: ID!) { customer(id: $id) { id companyName subscriptions(first: 10) { nodes { id } } } }"
M1 = ("mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) "
      "{ subscription { id version quantity } } }")
Q1 = "{ viewer { partner { customers(first: 50) { nodes { id companyName } } } } }"
Q3 = "{ customers(first: 50) { nodes { id companyName } } }"


def gid(ty, uuid):
    return base64.urlsafe_b64encode(f"{ty}:{uuid}".encode()).rstrip(b"=").decode()


def psql(url, sql, fetch=False):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t"], input=sql, text=True,
                         capture_output=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line] if fetch else None


SEED = """
BEGIN;
INSERT INTO tenant (tenant_id, kind, domain, created_at) VALUES
  ('{small_tid}', 'PARTNER', 'small.bench.example', now()), ('{big_tid}', 'PARTNER', 'big.bench.example', now());
INSERT INTO partner (id, tenant_id, name, domain, partner_type, partner_network_id, cloud, status, version,
                     created_at, updated_at) VALUES
  ('{small_id}', '{small_tid}', 'Small Partner', 'small.bench.example', 'DIRECT_BILL', 'PN-SMALL', 'PUBLIC', 'ACTIVE', 1, now(), now()),
  ('{big_id}', '{big_tid}', 'Big Partner', 'big.bench.example', 'DIRECT_BILL', 'PN-BIG', 'PUBLIC', 'ACTIVE', 1, now(), now());
CREATE TEMP TABLE c AS
  SELECT n, CASE WHEN n <= {small} THEN '{small_id}'::uuid ELSE '{big_id}'::uuid END AS partner_id,
         gen_random_uuid() AS id, gen_random_uuid() AS tenant_id, 'c' || n || '.bench.example' AS domain
  FROM generate_series(1, {small} + {big}) n;
INSERT INTO tenant (tenant_id, kind, domain, created_at) SELECT tenant_id, 'CUSTOMER', domain, now() FROM c;
INSERT INTO customer (id, tenant_id, company_name, domain, country, cloud, version, created_at, updated_at)
  SELECT id, tenant_id, 'Customer ' || n, domain, 'US', 'PUBLIC', 1, now() - n * interval '1 second', now() FROM c;
INSERT INTO relationship (id, kind, status, partner_id, customer_id, indirect_provider_id, customer_domain, roles,
                          duration_days, message, requested_at, responded_at, terminated_at, expires_at, version,
                          created_at, updated_at)
  SELECT gen_random_uuid(), 'RESELLER', 'ACTIVE', partner_id, id, NULL, domain, '', NULL, NULL, now(), now(), NULL,
         NULL, 1, now(), now() FROM c;
INSERT INTO subscription (id, customer_id, offer_id, offer_name, billing_model, channel, partner_id, reseller_id,
                          quantity, status, term_months, term_start, term_end, auto_renew, cancellation_allowed_until,
                          external_reference, migrated_from_id, version, created_at, updated_at, cancelled_at)
  SELECT gen_random_uuid(), c.id, 'O' || k, 'Offer ' || k, 'LICENSE_BASED', 'CSP', c.partner_id, NULL, 5, 'ACTIVE', 12,
         now(), now() + interval '300 days', true, now() + interval '7 days', NULL, NULL, 1, now(), now(), NULL
  FROM c, generate_series(1, CASE WHEN c.n = {small} + 1 THEN 5000 ELSE 2 END) k;
COMMIT;
ANALYZE;
"""


def seed(db_url, binary, small, big):
    admin_url, name = db_url.rsplit("/", 1)
    psql(admin_url + "/postgres", f"DROP DATABASE IF EXISTS {name};\nCREATE DATABASE {name};")
    env = dict(os.environ, DATABASE_URL=db_url)
    subprocess.run([binary, "migrate", "up"], env=env, check=True, timeout=120, capture_output=True)
    t0 = time.perf_counter()
    psql(db_url, SEED.format(small_tid=SMALL_TID, small_id=SMALL_ID, big_tid=BIG_TID, big_id=BIG_ID, small=small,
                             big=big))
    print(f"seeded {small} + {big} customers, {2 * (small + big) + 4998} subscriptions in "
          f"{time.perf_counter() - t0:.1f}s (SQL)", flush=True)


def start_server(binary, db_url, port):
    env = dict(os.environ, DATABASE_URL=db_url, PARTNERHUB_JWT_SECRET="bench-secret", PARTNERHUB_TENANT_BUDGET="0",
               PARTNERHUB_LISTEN=f"127.0.0.1:{port}", PARTNERHUB_LIFECYCLE_INTERVAL_SECS="3600",
               RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/graphql?query=%7B__typename%7D", timeout=1)
            return proc
        except Exception:  # noqa: BLE001
            if proc.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def run(url, tok, seconds, clients, make_job):
    """`make_job(i)` returns a function doing one request with a Client; every answer is checked."""
    latencies, lock, stop, errors = [], threading.Lock(), time.perf_counter() + seconds, []

    def worker(i):
        c, job, mine = Client(url, tok), make_job(i), []
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                job(c)
                mine.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if errors:
        raise RuntimeError(errors[0])
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return len(latencies) / seconds, q(0.5), q(0.99)


def q2_job(customers):
    def make(i):
        state = {"k": i}

        def job(c):
            cid = customers[state["k"] % len(customers)]
            state["k"] += 7
            assert c.gql(Q2, {"id": gid("Customer", cid)})["customer"]["id"]
        return job
    return make


def m1_job(subs, clients):
    def make(i):
        mine = [list(s) for s in subs[i::clients]]  # [uuid, version, quantity]
        state = {"k": 0}

        def job(c):
            s = mine[state["k"] % len(mine)]
            state["k"] += 1
            out = c.gql(M1, {"i": {"id": gid("Subscription", s[0]), "expectedVersion": s[1], "quantity": s[2] + 1}})
            s[1], s[2] = out["updateSubscription"]["subscription"]["version"], out["updateSubscription"]["subscription"]["quantity"]
        return job
    return make


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--db", default="ph_tenant_bench")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "partnerhub"))
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--big", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--no-seed", action="store_true")
    ap.add_argument("--ops", default="q2,m1,q1,q3")
    a = ap.parse_args()
    db_url = f"{a.pg}/{a.db}"
    if not a.no_seed:
        seed(db_url, a.binary, a.small, a.big)
    partners = {"small": (SMALL_TID, SMALL_ID), "big": (BIG_TID, BIG_ID)}
    # Q2 cycles over up to 1,000 of the partner's customers (not the one with 5,000 subscriptions).
    custs = {k: [r[0] for r in psql(db_url, f"SELECT c.id FROM customer c JOIN relationship r ON r.customer_id = c.id "
                                            f"WHERE r.partner_id = '{pid}' AND (SELECT count(*) FROM subscription s "
                                            f"WHERE s.customer_id = c.id) < 10 ORDER BY md5(c.id::text) LIMIT 1000", True)]
             for k, (_, pid) in partners.items()}
    heavy = psql(db_url, "SELECT customer_id FROM subscription GROUP BY customer_id HAVING count(*) >= 5000", True)[0][0]
    proc = start_server(a.binary, db_url, a.port)
    url = f"http://127.0.0.1:{a.port}/graphql"
    rows = []
    try:
        for op in a.ops.split(","):
            for size in ("small", "big"):
                tid, pid = partners[size]
                tok = token(tid, ["admin_agent"])
                if op == "q2":
                    cases = [(f"Q2 customer(id:) {size}", q2_job(custs[size]))]
                    if size == "big":
                        cases.append(("Q2 customer with 5,000 subscriptions (big)", q2_job([heavy])))
                elif op == "m1":
                    subs = [(r[0], int(r[1]), int(r[2])) for r in psql(
                        db_url, f"SELECT id, version, quantity FROM subscription WHERE partner_id = '{pid}' "
                                f"AND customer_id <> '{heavy}' ORDER BY md5(id::text) LIMIT 2000", True)]
                    cases = [(f"M1 updateSubscription {size}", m1_job(subs, a.clients))]
                elif op == "q1":
                    cases = [(f"Q1 partner.customers(first: 50) {size}", lambda i: lambda c: c.gql(Q1))]
                else:
                    cases = [(f"Q3 customers(first: 50) {size}", lambda i: lambda c: c.gql(Q3))]
                for name, make in cases:
                    rps, p50, p99 = run(url, tok, a.seconds, a.clients, make)
                    rows.append((name, rps, p50, p99))
                    print(f"{name:46s} {rps:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                          f"({a.clients} clients, {a.seconds:.0f}s)", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    by = {r[0]: r for r in rows}
    for op in ("Q2 customer(id:)", "M1 updateSubscription", "Q1 partner.customers(first: 50)",
               "Q3 customers(first: 50)"):
        s, b = by.get(f"{op} small"), by.get(f"{op} big")
        if s and b:
            print(f"{op:46s} big/small p50 {b[2] / s[2]:.2f}x  p99 {b[3] / s[3]:.2f}x  req/s {b[1] / s[1]:.2f}x")


if __name__ == "__main__":
    main()
