-- The report's three main distributions per vantage, over the MX hosts
-- supporting STARTTLS, each host counted with its best address's record:
-- key type and size (`key`), certificate verification (`verification`),
-- highest protocol version (`highest_protocol`). Needs the `hosts` view.
WITH t AS (SELECT * FROM read_parquet('targets.parquet')),
best AS (
  SELECT t.* FROM hosts JOIN t ON t.vantage = hosts.vantage AND t.ip = hosts.best_ip
  WHERE hosts.bucket = 'supports_starttls')
SELECT vantage, 'key' AS distribution, key_label AS value, count(*) AS count
  FROM best GROUP BY ALL
UNION ALL
SELECT vantage, 'verification', verification, count(*) FROM best GROUP BY ALL
UNION ALL
SELECT vantage, 'highest_protocol', highest_protocol, count(*) FROM best GROUP BY ALL
ORDER BY 1, 2, 3
