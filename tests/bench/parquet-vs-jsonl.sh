#!/usr/bin/env bash
# Parquet against JSON Lines on a stored scan (a benchmark, not a test):
# export time, file size and peak RSS of each, then DuckDB's time for the
# headline query (docs/sql/headline.sql) over each. The JSON Lines side gets
# the Parquet files' derived columns (bucket, outcome rank, address order)
# computed in SQL from the records.
#
#   tests/bench/parquet-vs-jsonl.sh DATA_DIR [SCAN] [MXSCOPE]
# A 1-million-domain store: MXSCOPE_BENCH_DIR=DIR cargo test --release -p
# mxscope-coordinator --lib report_on_a_million_domains -- --ignored
set -euo pipefail
data=$1; scan=${2:-s1}
root=$(cd "$(dirname "$0")/../.." && pwd)
mxscope=${3:-$root/target/release/mxscope}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$out/time" "$@"
  read -r secs kb < "$out/time"
  echo "$label: ${secs} s, peak RSS $((kb / 1024)) MiB"
}
measure "export parquet" "$mxscope" export "$scan" --data-dir "$data" --format parquet --out "$out/pq" 2>/dev/null
measure "export jsonl" "$mxscope" export "$scan" --data-dir "$data" --format jsonl --out "$out/all.jsonl" 2>/dev/null
echo "sizes: parquet $(du -cb "$out"/pq/*.parquet | tail -1 | cut -f1) bytes (domains + targets), jsonl $(stat -c %s "$out/all.jsonl") bytes"
# DuckDB reads each kind best from a file of its own (one schema each).
grep '^{"kind":"domain"' "$out/all.jsonl" > "$out/domains.jsonl"
grep '^{"kind":"target"' "$out/all.jsonl" > "$out/targets.jsonl"
python3 - "$root/docs/sql" "$out" <<'PY'
import duckdb, os, sys, time
sql, out = sys.argv[1], sys.argv[2]
hosts = open(os.path.join(sql, "hosts.sql")).read()
headline = open(os.path.join(sql, "headline.sql")).read()
def run(con, label):
    t = time.time()
    row = con.execute(headline).fetchone()
    print(f"duckdb headline over {label}: {time.time() - t:.2f} s -> {row}", flush=True)
con = duckdb.connect()
os.chdir(os.path.join(out, "pq"))
con.execute("CREATE VIEW hosts AS " + hosts)
run(con, "parquet")
con = duckdb.connect()
t = time.time()
# The same two tables, from the records (the derived columns computed here).
con.execute(f"""CREATE TABLE jdomains AS
  SELECT vantage, domain, dns.status AS dns_status, coalesce(dns.null_mx, false) AS null_mx,
         coalesce(dns.implicit_mx, false) AS implicit_mx,
         [{{'preference': m.preference, 'exchange': m.exchange, 'addresses': m.addresses}}
          FOR m IN coalesce(dns.mx, [])] AS mx
  FROM read_json('{out}/domains.jsonl', format='newline_delimited')""")
con.execute(f"""CREATE TABLE jtargets AS
  SELECT vantage, ip, outcome,
    CASE outcome WHEN 'starttls_ok' THEN 0 WHEN 'starttls_handshake_failed' THEN 1
      WHEN 'starttls_rejected' THEN 2 WHEN 'no_starttls' THEN 3 WHEN 'ehlo_failed' THEN 4
      WHEN 'greeting_refused' THEN 5 ELSE 6 END AS outcome_rank,
    CASE WHEN outcome IN ('starttls_ok','starttls_handshake_failed','starttls_rejected')
      THEN 'supports_starttls' WHEN outcome IN ('no_starttls','ehlo_failed','greeting_refused')
      THEN 'declared_no_starttls' ELSE 'connection_error' END AS bucket,
    CASE WHEN contains(ip, ':') THEN '6' || ip ELSE '4' || lpad(split_part(ip,'.',1),3,'0')
      || lpad(split_part(ip,'.',2),3,'0') || lpad(split_part(ip,'.',3),3,'0')
      || lpad(split_part(ip,'.',4),3,'0') END AS ip_sort
  FROM read_json('{out}/targets.jsonl', format='newline_delimited')""")
print(f"duckdb loading the JSON Lines into tables: {time.time() - t:.2f} s", flush=True)
swap = lambda q: q.replace("read_parquet('domains.parquet')", "jdomains").replace("read_parquet('targets.parquet')", "jtargets")
con.execute("CREATE VIEW hosts AS " + swap(hosts))
headline = swap(headline)
run(con, "jsonl (tables loaded)")
PY
