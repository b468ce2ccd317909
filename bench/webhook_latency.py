#!/usr/bin/env python3
"""Webhook latency: how long after a mutation commits its event reaches a webhook receiver.

Starts a receiver on 127.0.0.1, onboards a partner, registers a webhook for CUSTOMER_CREATED, then
creates customers (one client, `--rate` per second) and measures, for each, the time from the
mutation's answer (the commit is before it) to the signed delivery arriving. Verifies every
signature. Prints p50/p99/max and how many deliveries arrived more than once.

Usage: bench/webhook_latency.py [--url http://127.0.0.1:8080/graphql] [--events 200] [--rate 20]
The server must run with PARTNERHUB_JWT_SECRET=bench-secret and PARTNERHUB_WEBHOOK_ALLOW_PRIVATE=true
(the receiver is on 127.0.0.1 over http). Standard library only.
"""
import argparse, hashlib, hmac, http.server, json, threading, time

from load import onboard_partner

received, lock = {}, threading.Lock()
duplicates = [0]
secret_box = [b""]


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        now = time.perf_counter()
        t, v1 = (part.split("=", 1)[1] for part in self.headers["partnerhub-signature"].split(","))
        expected = hmac.new(secret_box[0], t.encode() + b"." + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, v1)
        event = json.loads(body)
        with lock:
            if event["nodeId"] in received:
                duplicates[0] += 1
            else:
                received[event["nodeId"]] = (now, ok)
        self.send_response(200 if ok else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080/graphql")
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20, help="mutations per second")
    a = ap.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    tid, partner = onboard_partner(a.url, "Hook Bench", "hooks")
    reg = partner.gql("mutation($i: RegisterWebhookInput!) { registerWebhook(input: $i) { secret } }",
                      {"i": {"url": hook_url, "eventTypes": ["CUSTOMER_CREATED"]}})
    secret_box[0] = reg["registerWebhook"]["secret"].encode()

    committed = {}
    interval = 1.0 / a.rate
    for n in range(a.events):
        started = time.perf_counter()
        data = partner.gql("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
                           {"i": {"companyName": f"C{n}", "domain": f"c{n}-{tid[:8]}.example", "country": "US"}})
        committed[data["createCustomer"]["customer"]["id"]] = time.perf_counter()
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))

    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        with lock:
            if all(k in received for k in committed):
                break
        time.sleep(0.05)
    server.shutdown()

    latencies = sorted((received[k][0] - t) * 1000 for k, t in committed.items() if k in received)
    bad = sum(1 for k in committed if k in received and not received[k][1])
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
    print(f"{len(latencies)}/{len(committed)} events delivered, {duplicates[0]} duplicates, {bad} bad signatures")
    if latencies:
        print(f"commit -> webhook: p50 {q(0.5):.0f} ms  p99 {q(0.99):.0f} ms  max {latencies[-1]:.0f} ms "
              f"({a.rate:g} mutations/s)")


if __name__ == "__main__":
    main()
