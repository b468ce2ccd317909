#!/usr/bin/env python3
"""Noisy neighbour benchmark: a quiet tenant polls a small page while a noisy tenant sends
maximum-cost queries from several clients. The quiet tenant polls every 5 ms (--quiet-interval). Prints its p50/p99 alone and beside the
noisy one, and how the noisy tenant's requests were answered (200 or 429).

Usage: bench/noisy.py [--url http://127.0.0.1:8080/graphql] [--seconds 15] [--noisy-clients 4]
The server must run with PARTNERHUB_JWT_SECRET=bench-secret. Run it once against a server with the
default budgets and once with PARTNERHUB_TENANT_BUDGET=0 to see what the budget changes.
Standard library only; every phase is bounded by --seconds.
"""
import argparse, http.client, json, os, sys, threading, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import onboard_partner, token  # noqa: E402

QUIET = "{ customers(first: 10) { nodes { id companyName } } }"
# 1 + 50 x (3 + 1 + 30 x 6) = 9,201 points: just under the default PARTNERHUB_MAX_COMPLEXITY.
NOISY = """{ customers(first: 50) { nodes { id companyName
  subscriptions(first: 30) { nodes { id offerName status quantity termEnd } } } } }"""


def onboard(url, name, customers, subscriptions):
    tid, partner = onboard_partner(url, name, name.lower())
    for c in range(customers):
        cid = partner.gql("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
                          {"i": {"companyName": f"{name} customer {c}", "domain": f"{name.lower()}{c}-{tid[:8]}.example",
                                 "country": "US"}})["createCustomer"]["customer"]["id"]
        for s in range(subscriptions):
            partner.gql("mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id } } }",
                        {"i": {"customerId": cid, "offerId": "O", "offerName": f"Offer {s}", "billingModel": "USAGE_BASED"}})
    return tid


def raw(url, tok):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"content-type": "application/json", "authorization": f"Bearer {tok}"}

    def send(query):
        conn.request("POST", u.path, json.dumps({"query": query}), headers)
        response = conn.getresponse()
        response.read()
        return response.status
    return send


def run(url, quiet_tok, noisy_tok, seconds, noisy_clients, interval):
    stop = time.perf_counter() + seconds
    latencies, statuses, lock = [], {}, threading.Lock()

    def quiet():
        send = raw(url, quiet_tok)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            status = send(QUIET)
            latencies.append((time.perf_counter() - t0, status))
            # A poller, not a flood: at most one request per interval (31 points each).
            time.sleep(max(0.0, interval - (time.perf_counter() - t0)))

    def noisy():
        send = raw(url, noisy_tok)
        while time.perf_counter() < stop:
            status = send(NOISY)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=quiet)] + [threading.Thread(target=noisy) for _ in range(noisy_clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ok = sorted(lat for lat, status in latencies if status == 200)
    q = lambda p: ok[min(len(ok) - 1, int(p * len(ok)))] * 1000 if ok else float("nan")
    return len(latencies), len(latencies) - len(ok), q(0.5), q(0.99), statuses


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080/graphql")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--noisy-clients", type=int, default=4)
    ap.add_argument("--quiet-interval", type=float, default=0.005, help="seconds between the quiet tenant's polls")
    a = ap.parse_args()
    quiet_tid = onboard(a.url, "Quiet", 10, 2)
    noisy_tid = onboard(a.url, "Noisy", 60, 30)
    quiet_tok, noisy_tok = token(quiet_tid, ["admin_agent"]), token(noisy_tid, ["admin_agent"])
    n, failed, p50, p99, _ = run(a.url, quiet_tok, noisy_tok, a.seconds, 0, a.quiet_interval)
    print(f"quiet alone:        {n:6d} requests ({failed} not 200)  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    n, failed, p50, p99, statuses = run(a.url, quiet_tok, noisy_tok, a.seconds, a.noisy_clients, a.quiet_interval)
    print(f"quiet beside noisy: {n:6d} requests ({failed} not 200)  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print(f"noisy ({a.noisy_clients} clients, {a.seconds:.0f} s): " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
