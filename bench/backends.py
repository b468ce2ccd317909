#!/usr/bin/env python3
"""SQLite against PostgreSQL: the side-by-side benchmark's three operations (Q1, Q2, M1; the same
documents as the team benchmark) on each backend, with the server's memory sampled throughout.

For each backend: starts the release server on a fresh database (PARTNERHUB_TENANT_BUDGET=0: a
throughput benchmark is exactly what a tenant budget refuses), seeds one partner with --customers
customers x 5 license-based subscriptions through the API, then runs each operation with wrk
(--connections keep-alive connections, --seconds each after a 2 s warm-up) while reading the
server's RSS from /proc every 100 ms. M1 tracks each subscription's version from the answers
(each wrk thread owns its own subscriptions), so VERSION_CONFLICT answers mean a bug, and are
counted.

Usage: bench/backends.py [--bin target/release/partnerhub] [--pg postgres://postgres@127.0.0.1:5432]
                         [--customers 200] [--seconds 10] [--connections 16]
Needs wrk. Standard-library Python only.
"""
import argparse, contextlib, http.client, json, os, re, subprocess, tempfile, threading, time, uuid

from load import SECRET, onboard_partner, token

Q1 = """query Q1 { customers(first: 50, orderBy: {field: COMPANY_NAME, direction: ASC}) { nodes { id companyName
  subscriptions(first: 10) { nodes { id offerName status quantity termEnd } } } } }"""
Q2 = """query Q2($id: ID!) { customer(id: $id) { id companyName domain country
  subscriptions(first: 100) { nodes { id offerName status quantity termEnd } } } }"""
M1 = """mutation M1($id: ID!, $expectedVersion: Int!, $quantity: Int!) {
  updateSubscription(input: {id: $id, expectedVersion: $expectedVersion, quantity: $quantity}) {
    subscription { id offerName status quantity termEnd version } } }"""


def seed(port, customers):
    tid, partner = onboard_partner(f"http://127.0.0.1:{port}/graphql")
    customer_ids, subscriptions = [], []
    for c in range(customers):
        cid = partner.gql("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
                          {"i": {"companyName": f"Customer {c:04}", "domain": f"c{c}-{tid[:8]}.example",
                                 "country": "US"}})["createCustomer"]["customer"]["id"]
        customer_ids.append(cid)
        for s in range(5):
            sub = partner.gql("mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) "
                              "{ subscription { id version } } }",
                              {"i": {"customerId": cid, "offerId": "O", "offerName": f"Offer {s}",
                                     "billingModel": "LICENSE_BASED", "quantity": 5, "termMonths": 12}})
            subscriptions.append(sub["createSubscription"]["subscription"])
    return tid, customer_ids, subscriptions


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


COUNTING = """
local threads_list = {}
local counter = 0
setup = function(thread)
  thread:set("number", counter)
  table.insert(threads_list, thread)
  counter = counter + 1
end
conflicts, errors = 0, 0
done = function(summary, latency, requests)
  local c, e = 0, 0
  for _, t in ipairs(threads_list) do
    c = c + t:get("conflicts")
    e = e + t:get("errors")
  end
  io.write(string.format("graphql: conflicts %d errors %d\\n", c, e))
end
"""


def wrk_script(path, tok, query, ids=None, subscriptions=None, threads=2):
    head = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {tok}"
local query = {lua_string(query)}
""" + COUNTING
    check = """
response = function(status, headers, body)
  if body:find('"errors"', 1, true) then errors = errors + 1 end
end
"""
    if subscriptions is None and ids is None:
        body = f'wrk.body = {lua_string(json.dumps({"query": query}))}\n' + check
    elif subscriptions is None:
        body = "local ids = {" + ",".join(lua_string(i) for i in ids) + "}\n" + """
local n = 0
request = function()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  return wrk.format(nil, nil, nil, '{"query":"' .. query:gsub('"', '\\\\"') .. '","variables":{"id":"' .. id .. '"}}')
end
""" + check
    else:
        # Each wrk thread owns the subscriptions whose index mod `threads` is its number, and learns
        # their versions from the answers.
        rows = ",".join("{" + lua_string(s["id"]) + "," + str(s["version"]) + "}" for s in subscriptions)
        body = "local all = {" + rows + "}\nlocal threads = " + str(threads) + "\n" + """
init = function(args)
  mine, versions, n = {}, {}, 0
  for i, row in ipairs(all) do
    if (i - 1) % threads == number then
      table.insert(mine, row[1])
      versions[row[1]] = row[2]
    end
  end
end
request = function()
  n = n + 1
  local id = mine[(n % #mine) + 1]
  local v = versions[id]
  return wrk.format(nil, nil, nil, '{"query":"' .. query:gsub('"', '\\\\"') .. '","variables":{"id":"' .. id ..
    '","expectedVersion":' .. v .. ',"quantity":' .. (5 + (v % 20)) .. '}}')
end
response = function(status, headers, body)
  local id, v = body:match('"id":"([^"]+)".-"version":(%d+)')
  if id and versions[id] then versions[id] = tonumber(v) end
  if body:find("VERSION_CONFLICT", 1, true) then conflicts = conflicts + 1
  elseif body:find('"errors"', 1, true) then errors = errors + 1 end
end
"""
    with open(path, "w") as f:
        f.write(head + body)


def run_wrk(port, script, seconds, connections, warm_up=True, probe=None):
    """One measured wrk run (after a 2 s warm-up unless `warm_up` is false): (req/s, p50 ms, p99 ms,
    non-2xx, VERSION_CONFLICTs, other GraphQL errors). `probe`, if given, is called right before and
    right after the measured run only, e.g. to read CPU counters around it."""
    url = f"http://127.0.0.1:{port}/graphql"
    # No warm-up for M1: a second wrk run would start again from the versions in the script, which
    # the warm-up made stale.
    if warm_up:
        subprocess.run(["wrk", "-t2", f"-c{connections}", "-d2s", "-s", script, url], capture_output=True, timeout=60)
    if probe:
        probe()
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "10s",
                          "-s", script, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    if probe:
        probe()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    graphql = re.search(r"graphql: conflicts (\d+) errors (\d+)", out)
    conflicts, errors = (int(graphql.group(1)), int(graphql.group(2))) if graphql else (-1, -1)
    return rps, pct(50), pct(99), int(non2xx.group(1)) if non2xx else 0, conflicts, errors


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.1)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(name, database_url, binary, extra_env=None):
    """Starts `partnerhub serve` on a free port (budget off, runner hourly); returns (process, port)
    once /readyz answers 200."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, PARTNERHUB_LISTEN=f"127.0.0.1:{port}",
               PARTNERHUB_JWT_SECRET=SECRET.decode(), PARTNERHUB_TENANT_BUDGET="0", RUST_LOG="warn",
               PARTNERHUB_LIFECYCLE_INTERVAL_SECS="3600")
    env.update(extra_env or {})
    log = open(f"{tempfile.gettempdir()}/bench-backends-{name}.log", "w")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=log)
    log.close()
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"{name}: the server did not start")


@contextlib.contextmanager
def scratch_database(pg, prefix):
    """A fresh PostgreSQL database on the server `pg` (a URL without database), dropped afterwards;
    yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", pg + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True, timeout=60)
    try:
        yield f"{pg}/{name}"
    finally:
        subprocess.run(["psql", pg + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], timeout=60)


@contextlib.contextmanager
def scratch_sqlite(prefix):
    """A fresh SQLite database file in the temporary directory, removed afterwards; yields its URL."""
    path = f"{tempfile.gettempdir()}/{prefix}_{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite://{path}?mode=rwc"
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


def stop_server(server):
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def bench_backend(name, database_url, args):
    server, port = start_server(name, database_url, args.bin)
    sampler = RssSampler(server.pid)
    try:
        started = time.perf_counter()
        tid, customers, subscriptions = seed(port, args.customers)
        seeded = time.perf_counter() - started
        writes = 2 + len(customers) + len(subscriptions)
        tok = token(tid, ["admin_agent"])
        sampler.start()
        results = {"seed": writes / seeded}
        with tempfile.TemporaryDirectory() as tmp:
            for op, query, extra in (("Q1", Q1, {}), ("Q2", Q2, {"ids": customers}),
                                     ("M1", M1, {"subscriptions": subscriptions})):
                script = f"{tmp}/{op}.lua"
                wrk_script(script, tok, query, **extra)
                results[op] = run_wrk(port, script, args.seconds, args.connections, warm_up=op != "M1")
                print(f"  {name} {op}: {results[op][0]:.0f} req/s, p50 {results[op][1]:.1f} ms, "
                      f"p99 {results[op][2]:.1f} ms, non-2xx {results[op][3]}, VERSION_CONFLICT {results[op][4]}, "
                      f"other GraphQL errors {results[op][5]}", flush=True)
        results["rss_mb"] = sampler.peak / 1024
        return results
    finally:
        sampler.stop.set()
        stop_server(server)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/partnerhub")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    with scratch_database(args.pg, "ph_backends") as pg_url:
        print("PostgreSQL:", flush=True)
        pg = bench_backend("postgres", pg_url, args)
    with scratch_sqlite("ph_backends") as sqlite_url:
        print("SQLite:", flush=True)
        lite = bench_backend("sqlite", sqlite_url, args)

    print(f"\n{args.connections} connections, {args.seconds:.0f} s per row; one partner with {args.customers} "
          "customers x 5 subscriptions\n")
    print("| op | PostgreSQL req/s (p50 / p99 ms) | SQLite req/s (p50 / p99 ms) | SQLite / PostgreSQL |")
    print("|---|---:|---:|---:|")
    for op in ("Q1", "Q2", "M1"):
        p, s = pg[op], lite[op]
        print(f"| {op} | {p[0]:,.0f} ({p[1]:.1f} / {p[2]:.1f}) | {s[0]:,.0f} ({s[1]:.1f} / {s[2]:.1f}) | "
              f"{s[0] / p[0]:.2f} |")
    print(f"| seeding through the API, one client (mutations/s) | {pg['seed']:,.0f} | {lite['seed']:,.0f} | "
          f"{lite['seed'] / pg['seed']:.2f} |")
    print(f"| peak server RSS during the operations | {pg['rss_mb']:.0f} MB | {lite['rss_mb']:.0f} MB | |")


if __name__ == "__main__":
    main()
