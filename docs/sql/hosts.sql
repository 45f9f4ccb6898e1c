-- Every MX host name per vantage with its status (docs/counting.md): the
-- bucket of its best address (lowest outcome rank, then the smallest
-- address), connection_error when it has no address or none was probed;
-- `buckets` > 1 marks a host whose addresses disagree. The other queries
-- read it as a view: CREATE VIEW hosts AS <this file>.
WITH d AS (SELECT * FROM read_parquet('domains.parquet')),
t AS (SELECT * FROM read_parquet('targets.parquet')),
mx AS (
  SELECT d.vantage, d.domain, u.m.preference AS preference, u.m.exchange AS exchange,
         u.m.addresses AS addresses
  FROM d, unnest(d.mx) AS u(m)
  WHERE d.dns_status = 'ok' AND NOT d.null_mx),
host_ip AS (SELECT DISTINCT vantage, exchange, unnest(addresses) AS ip FROM mx),
names AS (SELECT DISTINCT vantage, exchange FROM mx)
SELECT n.vantage, n.exchange,
       coalesce(arg_min(t.bucket, printf('%d|%s', t.outcome_rank, t.ip_sort)), 'connection_error')
         AS bucket,
       arg_min(t.ip, printf('%d|%s', t.outcome_rank, t.ip_sort)) AS best_ip,
       count(DISTINCT coalesce(t.bucket, 'connection_error')) FILTER (WHERE hi.ip IS NOT NULL)
         AS buckets
FROM names n
LEFT JOIN host_ip hi ON hi.vantage = n.vantage AND hi.exchange = n.exchange
LEFT JOIN t ON t.vantage = n.vantage AND t.ip = hi.ip
GROUP BY n.vantage, n.exchange
