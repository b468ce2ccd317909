#!/usr/bin/env python3
"""Load benchmark for partnerhub: seeds a world through the GraphQL mutations, then measures the
nested read (a partner's first 50 customers, each with its first 10 subscriptions
and their partner and customer) and a trivial query, with N concurrent keep-alive clients.

Usage: bench/load.py [--url http://127.0.0.1:8080/graphql] [--customers 200] [--seconds 15] [--clients 8]
The server must run with PARTNERHUB_JWT_SECRET=bench-secret (and ideally a fresh database).
Standard library only.
"""
import argparse, base64, hashlib, hmac, http.client, json, threading, time, urllib.parse, uuid

SECRET = b"bench-secret"
PLATFORM = "00000000-0000-4000-8000-000000000001"


def token(tid, roles):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=")
    now = int(time.time())
    head, body = enc({"alg": "HS256", "typ": "JWT"}), enc({"tid": tid, "sub": "bench", "exp": now + 7200, "roles": roles})
    sig = base64.urlsafe_b64encode(hmac.new(SECRET, head + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    return (head + b"." + body + b"." + sig).decode()


class Client:
    def __init__(self, url, tok):
        u = urllib.parse.urlparse(url)
        self.path, self.conn = u.path, http.client.HTTPConnection(u.hostname, u.port)
        self.headers = {"content-type": "application/json", "authorization": f"Bearer {tok}"}

    def gql(self, query, variables=None):
        self.conn.request("POST", self.path, json.dumps({"query": query, "variables": variables or {}}), self.headers)
        body = json.loads(self.conn.getresponse().read())
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return body["data"]


def onboard_partner(url, name="Bench Partner", label="bench"):
    """Onboards a direct-bill partner named `name` with a fresh tenant id (as the platform), domain
    `<label>-<tid prefix>.example`; returns its tenant id and a client holding its admin_agent token."""
    platform = Client(url, token(PLATFORM, ["platform_admin"]))
    tid = str(uuid.uuid4())
    platform.gql("mutation($i: OnboardPartnerInput!) { onboardPartner(input: $i) { partner { id } } }",
                 {"i": {"tenantId": tid, "name": name, "domain": f"{label}-{tid[:8]}.example",
                        "partnerType": "DIRECT_BILL", "partnerNetworkId": f"PN-{tid[:12]}"}})
    return tid, Client(url, token(tid, ["admin_agent"]))


def seed(url, customers):
    tid, partner = onboard_partner(url)
    started, writes = time.perf_counter(), 1
    for c in range(customers):
        cid = partner.gql("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
                          {"i": {"companyName": f"Customer {c}", "domain": f"c{c}-{tid[:8]}.example", "country": "US"}})["createCustomer"]["customer"]["id"]
        writes += 1
        for s in range(10):
            lic = s % 2 == 0
            partner.gql("mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id } } }",
                        {"i": {"customerId": cid, "offerId": "O", "offerName": f"Offer {s}",
                               "billingModel": "LICENSE_BASED" if lic else "USAGE_BASED",
                               **({"quantity": 5, "termMonths": 12} if lic else {})}})
            writes += 1
    elapsed = time.perf_counter() - started
    print(f"seeded {customers} customers x 10 subscriptions through the API: {writes} mutations in {elapsed:.1f}s "
          f"({writes / elapsed:.0f} mutations/s, one client)")
    return tid


NESTED = """{ viewer { partner { customers(first: 50) { edges { node { id companyName
  subscriptions(first: 10) { edges { node { id offerName status partner { id name } customer { id companyName } } } } } } } } } }"""
TRIVIAL = "{ viewer { tenantId } }"


def load(url, tok, query, seconds, clients):
    latencies, lock, stop = [], threading.Lock(), time.perf_counter() + seconds

    def worker():
        c, mine = Client(url, tok), []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            c.gql(query)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return len(latencies) / seconds, q(0.5), q(0.99)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080/graphql")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=8)
    a = ap.parse_args()
    tid = seed(a.url, a.customers)
    tok = token(tid, ["admin_agent"])
    for name, query in [("nested 50x10 (+partner, customer)", NESTED), ("trivial viewer", TRIVIAL)]:
        rps, p50, p99 = load(a.url, tok, query, a.seconds, a.clients)
        print(f"{name:38s} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({a.clients} clients, {a.seconds:.0f}s)")
