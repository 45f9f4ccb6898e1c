-- The headline sentence's numbers per vantage, as `mxscope report` counts
-- them ("On a total of D domain names, M unique MX records have been
-- found; S of them support STARTTLS, covering C unique domains (E MXes
-- reported a connection error while N declared to not support STARTTLS)").
-- Needs the `hosts` view (hosts.sql).
WITH d AS (SELECT * FROM read_parquet('domains.parquet')),
mx AS (
  SELECT d.vantage, d.domain, u.m.preference AS preference, u.m.exchange AS exchange
  FROM d, unnest(d.mx) AS u(m)
  WHERE d.dns_status = 'ok' AND NOT d.null_mx),
per_mx AS (
  SELECT mx.vantage, mx.domain, mx.preference, hosts.bucket = 'supports_starttls' AS starttls,
         mx.preference = min(mx.preference) OVER (PARTITION BY mx.vantage, mx.domain) AS primary_mx
  FROM mx JOIN hosts USING (vantage, exchange)),
per_domain AS (
  SELECT vantage, domain, bool_or(starttls) AS covered, bool_and(starttls) AS all_mx,
         bool_or(starttls AND primary_mx) AS primary_covered
  FROM per_mx GROUP BY vantage, domain),
domain_counts AS (
  SELECT vantage,
    count(*) AS domains,
    count(*) FILTER (WHERE dns_status = 'ok' AND NOT null_mx AND NOT implicit_mx) AS domains_with_mx,
    count(*) FILTER (WHERE dns_status = 'ok' AND NOT null_mx AND implicit_mx) AS domains_implicit_mx,
    count(*) FILTER (WHERE dns_status = 'ok' AND null_mx) AS domains_null_mx,
    count(*) FILTER (WHERE dns_status <> 'ok') AS domains_dns_error
  FROM d GROUP BY vantage),
host_counts AS (
  SELECT vantage,
    count(*) AS unique_mx,
    count(*) FILTER (WHERE bucket = 'supports_starttls') AS mx_starttls,
    count(*) FILTER (WHERE bucket = 'declared_no_starttls') AS mx_no_starttls,
    count(*) FILTER (WHERE bucket = 'connection_error') AS mx_connection_error,
    count(*) FILTER (WHERE buckets > 1) AS mx_inconsistent
  FROM hosts GROUP BY vantage),
coverage AS (
  SELECT vantage,
    count(*) FILTER (WHERE covered) AS domains_covered,
    count(*) FILTER (WHERE all_mx) AS domains_all_mx_starttls,
    count(*) FILTER (WHERE primary_covered) AS domains_primary_mx_starttls
  FROM per_domain GROUP BY vantage)
SELECT dc.vantage, dc.domains, dc.domains_with_mx, dc.domains_implicit_mx, dc.domains_null_mx,
       dc.domains_dns_error, coalesce(hc.unique_mx, 0) AS unique_mx,
       coalesce(hc.mx_starttls, 0) AS mx_starttls, coalesce(hc.mx_no_starttls, 0) AS mx_no_starttls,
       coalesce(hc.mx_connection_error, 0) AS mx_connection_error,
       coalesce(hc.mx_inconsistent, 0) AS mx_inconsistent,
       coalesce(c.domains_covered, 0) AS domains_covered,
       coalesce(c.domains_all_mx_starttls, 0) AS domains_all_mx_starttls,
       coalesce(c.domains_primary_mx_starttls, 0) AS domains_primary_mx_starttls
FROM domain_counts dc
LEFT JOIN host_counts hc USING (vantage)
LEFT JOIN coverage c USING (vantage)
ORDER BY dc.vantage
