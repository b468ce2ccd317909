#!/usr/bin/env python3
"""Live events latency: the time from a mutation's response (its commit) to the delivery of its event
on a WebSocket subscription (/graphql/ws, graphql-transport-ws), under a mutation load.

Seeds one partner with --writers customers, each with a license-based subscription; then each writer
thread raises the quantity of its own subscription by one, as fast as it can (keep-alive HTTP), for
--seconds. One subscriber (the partner) listens to `events(types: [SUBSCRIPTION_UPDATED])`; each
event is matched to its mutation by (node id, new quantity). Prints the mutation rate, p50/p99/max
latency and how many events were missed (none expected).

Usage: bench/events_latency.py [--url http://127.0.0.1:8080/graphql] [--seconds 10] [--writers 4]
The server must run with PARTNERHUB_JWT_SECRET=bench-secret. A second --ws-url (another instance on
the same PostgreSQL database) measures delivery across instances (LISTEN/NOTIFY).
Standard library only: a minimal RFC 6455 client (text frames, masking, ping/pong, close).
"""
import argparse, base64, json, os, socket, statistics, struct, sys, threading, time, urllib.parse, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import PLATFORM, Client, token  # noqa: E402

ONBOARD = "mutation($i: OnboardPartnerInput!) { onboardPartner(input: $i) { partner { tenantId } } }"
CREATE = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }"
SELL = "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id version quantity } } }"
UPDATE = "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { version quantity } } }"
EVENTS = "subscription { events(types: [SUBSCRIPTION_UPDATED]) { nodeId details } }"


class WebSocket:
    """Just enough of RFC 6455 for graphql-transport-ws."""

    def __init__(self, url, protocol):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port or 80))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, payload, opcode=1):
        data = payload.encode() if isinstance(payload, str) else payload
        n = len(data)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def send_json(self, value):
        self.send(json.dumps(value))

    def recv_json(self):
        """The next text message as JSON; None when the server closed (the close code in self.closed)."""
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            data = self._read(n)  # server frames are not masked
            if opcode == 9:
                self.send(data, opcode=10)
            elif opcode == 8:
                self.closed = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                return None
            elif opcode in (0, 1):
                message += data
                if b0 & 0x80:
                    return json.loads(message)


def seed(url, writers):
    platform = Client(url, token(PLATFORM, ["platform_admin"]))
    tid = str(uuid.uuid4())
    name = f"ev-{tid[:8]}"
    platform.gql(ONBOARD, {"i": {"name": name, "domain": f"{name}.example", "partnerType": "DIRECT_BILL",
                                 "partnerNetworkId": f"PN-{name}", "cloud": "PUBLIC", "tenantId": tid}})
    partner = token(tid, ["admin_agent"])
    client = Client(url, partner)
    subs = []
    for i in range(writers):
        c = client.gql(CREATE, {"i": {"companyName": f"{name} c{i}", "domain": f"{name}-c{i}.example", "country": "US"}})
        s = client.gql(SELL, {"i": {"customerId": c["createCustomer"]["customer"]["id"], "offerId": "M365", "offerName": "M365",
                                    "billingModel": "LICENSE_BASED", "quantity": 1, "termMonths": 12}})
        subs.append(s["createSubscription"]["subscription"])
    return partner, subs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080/graphql")
    ap.add_argument("--ws-url", help="the WebSocket endpoint (default: the same server's /graphql/ws)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--writers", type=int, default=4)
    args = ap.parse_args()
    ws_url = args.ws_url or args.url.replace("http://", "ws://").rstrip("/") + "/ws"

    partner, subs = seed(args.url, args.writers)
    ws = WebSocket(ws_url, "graphql-transport-ws")
    ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {partner}"}})
    assert ws.recv_json()["type"] == "connection_ack"
    ws.send_json({"type": "subscribe", "id": "e", "payload": {"query": EVENTS}})
    # The subscription listens once a message sent after it is answered.
    ws.send_json({"type": "subscribe", "id": "sync", "payload": {"query": "{ viewer { tenantKind } }"}})
    while (m := ws.recv_json()) and not (m.get("type") == "complete" and m.get("id") == "sync"):
        pass

    committed, delivered, lock = {}, {}, threading.Lock()
    stop = threading.Event()

    def reader():
        while True:
            try:
                m = ws.recv_json()
            except (EOFError, OSError):
                return
            if m is None:
                return
            if m.get("type") == "next" and m.get("id") == "e":
                now = time.perf_counter()
                ev = m["payload"]["data"]["events"]
                key = (ev["nodeId"], ev["details"]["quantity"]["after"])
                with lock:
                    delivered[key] = now

    def writer(sub):
        client = Client(args.url, partner)
        version, quantity = sub["version"], sub["quantity"]
        while not stop.is_set():
            quantity += 1
            data = client.gql(UPDATE, {"i": {"id": sub["id"], "expectedVersion": version, "quantity": quantity}})
            now = time.perf_counter()
            version = data["updateSubscription"]["subscription"]["version"]
            with lock:
                committed[(sub["id"], quantity)] = now

    threading.Thread(target=reader, daemon=True).start()
    threads = [threading.Thread(target=writer, args=(s,)) for s in subs]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    deadline = time.time() + 5
    while time.time() < deadline:
        with lock:
            if all(k in delivered for k in committed):
                break
        time.sleep(0.05)
    with lock:
        latencies = sorted((delivered[k] - t) * 1000 for k, t in committed.items() if k in delivered)
        missed = sum(1 for k in committed if k not in delivered)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    print(f"{len(committed)} mutations in {elapsed:.1f} s ({len(committed) / elapsed:.0f}/s, {args.writers} writers); "
          f"events delivered {len(latencies)}, missed {missed}")
    print(f"commit (mutation response) -> WebSocket delivery: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {latencies[-1]:.1f} ms")
    print("(negative values: the event arrived before the HTTP response was read)")
    ws.send_json({"type": "complete", "id": "e"})


if __name__ == "__main__":
    main()
