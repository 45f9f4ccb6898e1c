-- Outcomes per vantage side by side (one row per outcome, one column per
-- vantage): where the networks disagree, the counts differ.
PIVOT (SELECT vantage, outcome FROM read_parquet('targets.parquet'))
ON vantage USING count(*) GROUP BY outcome ORDER BY outcome
