-- The hosts with a given finding (here `no_forward_secrecy`), one row per
-- (address, vantage), with their MX names: a list to notify operators from.
SELECT vantage, ip, array_to_string(mx_names, ' ') AS mx_names
FROM read_parquet('targets.parquet')
WHERE list_contains(findings, 'no_forward_secrecy')
ORDER BY vantage, ip_sort
