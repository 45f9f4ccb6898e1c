//! Scans side by side: one column per scan (its first vantage report),
//! a row per headline number and per distribution row. The text and
//! Markdown renderers print [`comparison_table`]; JSON is the
//! [`Comparison`] itself.

use super::model::{Comparison, ScanReport, VantageReport};

/// Several scan reports, side by side, in the given order.
pub fn compare(scans: Vec<ScanReport>) -> Comparison {
    Comparison { scans }
}

/// One cell: a count and, when meaningful, its percentage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub count: u64,
    pub percent: Option<f64>,
}

/// One row of the table: a label and one cell per scan (`None` when the
/// scan has no such number, e.g. no legacy distribution).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub label: String,
    pub cells: Vec<Option<Cell>>,
}

/// A titled group of rows (the headline, then one per distribution).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonSection {
    pub title: String,
    pub rows: Vec<ComparisonRow>,
}

/// The whole side-by-side table.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonTable {
    /// Column titles: [`ScanInfo::title`](super::model::ScanInfo::title), with
    /// the scan id and vantage.
    pub columns: Vec<String>,
    pub sections: Vec<ComparisonSection>,
}

/// The table of a comparison: headline numbers, then every distribution
/// that any scan has, rows in first-seen order.
pub fn comparison_table(comparison: &Comparison) -> ComparisonTable {
    let main: Vec<Option<&VantageReport>> = comparison
        .scans
        .iter()
        .map(|s| s.vantages.first())
        .collect();
    let columns = comparison
        .scans
        .iter()
        .zip(&main)
        .map(|(s, v)| match v {
            Some(v) => format!("{} [{} @ {}]", s.scan.title(), s.scan.id, v.vantage),
            None => format!("{} [{}]", s.scan.title(), s.scan.id),
        })
        .collect();
    let mut sections = Vec::new();

    let headline_labels: Vec<&'static str> = main
        .iter()
        .flatten()
        .next()
        .map(|v| v.headline.numbers().iter().map(|n| n.label).collect())
        .unwrap_or_default();
    let numbers: Vec<Option<Vec<_>>> = main
        .iter()
        .map(|v| v.map(|v| v.headline.numbers()))
        .collect();
    sections.push(ComparisonSection {
        title: "Headline".to_string(),
        rows: headline_labels
            .iter()
            .enumerate()
            .map(|(i, label)| ComparisonRow {
                label: (*label).to_string(),
                cells: numbers
                    .iter()
                    .map(|n| {
                        n.as_ref().and_then(|n| n.get(i)).map(|n| Cell {
                            count: n.count,
                            percent: n.percent,
                        })
                    })
                    .collect(),
            })
            .collect(),
    });

    let mut names: Vec<(&str, &str, &str)> = Vec::new();
    for v in main.iter().flatten() {
        for d in v.all_distributions() {
            if !names.iter().any(|(n, _, _)| *n == d.name) {
                names.push((&d.name, &d.title, &d.population));
            }
        }
    }
    for (name, title, population) in names {
        let dists: Vec<_> = main
            .iter()
            .map(|v| v.and_then(|v| v.all_distributions().find(|d| d.name == name)))
            .collect();
        let mut values: Vec<&str> = Vec::new();
        for d in dists.iter().flatten() {
            for row in &d.rows {
                if !values.contains(&row.value.as_str()) {
                    values.push(&row.value);
                }
            }
        }
        let mut rows = vec![ComparisonRow {
            label: format!("total ({population})"),
            cells: dists
                .iter()
                .map(|d| {
                    d.map(|d| Cell {
                        count: d.total,
                        percent: None,
                    })
                })
                .collect(),
        }];
        rows.extend(values.iter().map(|value| {
            ComparisonRow {
                label: (*value).to_string(),
                cells: dists
                    .iter()
                    .map(|d| {
                        d.map(|d| {
                            let row = d.rows.iter().find(|r| r.value == *value);
                            Cell {
                                count: row.map_or(0, |r| r.count),
                                percent: Some(row.map_or(0.0, |r| r.percent)),
                            }
                        })
                    })
                    .collect(),
            }
        }));
        sections.push(ComparisonSection {
            title: title.to_string(),
            rows,
        });
    }
    if let Some(section) = agreement_section(comparison) {
        sections.push(section);
    }
    ComparisonTable { columns, sections }
}

/// The title of the agreement section of a comparison.
pub const AGREEMENT_TITLE: &str = "Vantage agreement";

/// The vantage agreement of each scan with two or more vantages: targets
/// and domains on which all agree, then the count per class.
fn agreement_section(comparison: &Comparison) -> Option<ComparisonSection> {
    let agreements: Vec<_> = comparison
        .scans
        .iter()
        .map(|s| s.agreement.as_ref())
        .collect();
    agreements.iter().flatten().next()?;
    let row = |label: String, cell: &dyn Fn(&super::model::Agreement) -> Cell| ComparisonRow {
        label,
        cells: agreements.iter().map(|a| a.map(cell)).collect(),
    };
    let mut rows = vec![
        row("targets compared".into(), &|a| Cell {
            count: a.targets_compared,
            percent: None,
        }),
        row("targets on which all vantages agree".into(), &|a| Cell {
            count: a.targets_agreeing,
            percent: Some(a.targets_agreeing_percent),
        }),
        row("domains compared".into(), &|a| Cell {
            count: a.domains_compared,
            percent: None,
        }),
        row("domains on which all vantages agree".into(), &|a| Cell {
            count: a.domains_agreeing,
            percent: Some(a.domains_agreeing_percent),
        }),
    ];
    for class in super::vantages::agreement::all_classes() {
        let name = super::vantages::class_name(class);
        if agreements
            .iter()
            .flatten()
            .any(|a| a.classes.contains_key(name))
        {
            rows.push(row(name.to_string(), &|a| Cell {
                count: a.classes.get(name).copied().unwrap_or(0),
                percent: None,
            }));
        }
    }
    Some(ComparisonSection {
        title: AGREEMENT_TITLE.to_string(),
        rows,
    })
}
