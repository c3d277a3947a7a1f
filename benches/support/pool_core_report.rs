//! `pool_core`'s tables: ratios to deadpool-managed, the latency and fairness table, the
//! decomposition against the bare primitives, and the goals the issue sets, each checked.

use std::collections::HashMap;

use crate::charts::Panel;
use crate::stats::{fmt_ratio, median, print_table};
use crate::{Cell, Settings, BARE, LAT_MAX, LAT_TASKS, MAIN, NAMES, REFERENCE, WIREPOOL};

/// Median over rounds of contender `i`'s rate divided by the reference's rate in the same round.
fn ratio(rates: &HashMap<(usize, usize), Vec<f64>>, ci: usize, i: usize, over: usize) -> f64 {
    let (num, den) = (&rates[&(ci, i)], &rates[&(ci, over)]);
    let per_round: Vec<f64> = num.iter().zip(den).map(|(a, b)| a / b).collect();
    median(&per_round)
}

pub(crate) fn report(
    s: &Settings,
    cells: &[Cell],
    rates: &HashMap<(usize, usize), Vec<f64>>,
    lat: &HashMap<usize, Vec<[f64; 6]>>,
) {
    println!(
        "## pool_core: checkout+return cycles/s, ratio to deadpool managed \
         (median of {} interleaved rounds, {:?} window, 2 tokio workers)\n",
        s.rounds, s.window
    );
    let (mut short_of_bare, mut behind_peer) = (Vec::new(), Vec::new());
    for hold in [false, true] {
        let variant = if hold {
            "get + yield + drop"
        } else {
            "get + drop"
        };
        println!("### {variant}\n");
        let mut header = vec![
            "T".to_owned(),
            "max".to_owned(),
            "deadpool managed (M/s)".to_owned(),
        ];
        header.extend(
            NAMES[..MAIN]
                .iter()
                .filter(|n| **n != NAMES[REFERENCE])
                .map(|n| n.to_string()),
        );
        header.push("wirepool / bare".to_owned());
        let mut rows = Vec::new();
        for (ci, cell) in cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.hold_across_yield == hold)
        {
            let mut row = vec![
                cell.tasks.to_string(),
                cell.max.to_string(),
                format!("{:.2}", median(&rates[&(ci, REFERENCE)]) / 1e6),
            ];
            for i in (0..MAIN).filter(|i| *i != REFERENCE) {
                row.push(fmt_ratio(ratio(rates, ci, i, REFERENCE)));
            }
            let vs_bare = ratio(rates, ci, WIREPOOL, BARE);
            row.push(fmt_ratio(vs_bare));
            rows.push(row);
            if vs_bare < 0.9 {
                short_of_bare.push(format!(
                    "{variant} T={} max={}: {vs_bare:.2}",
                    cell.tasks, cell.max
                ));
            }
            for (peer, name) in NAMES.iter().enumerate().take(BARE).skip(1) {
                let r = ratio(rates, ci, WIREPOOL, peer);
                if hold && r < 1.0 {
                    behind_peer.push(format!(
                        "T={} max={} vs {name}: {r:.2}",
                        cell.tasks, cell.max
                    ));
                }
            }
        }
        print_table(&header, &rows);
    }
    println!(
        "### checkout latency, T={LAT_TASKS} max={LAT_MAX}, guard held across a yield \
         (µs, median over rounds)\n"
    );
    let header: Vec<String> = [
        "pool",
        "p50",
        "p99",
        "p99.9",
        "p99 / p50",
        "cycles/s (M)",
        "Jain fairness",
        "tasks starved",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let mut rows = Vec::new();
    let mut unfair = Vec::new();
    for (i, name) in NAMES[..MAIN].iter().enumerate() {
        let col = |k: usize| median(&lat[&i].iter().map(|r| r[k]).collect::<Vec<_>>());
        let spread = col(1) / col(0);
        if i == WIREPOOL && spread > 1.5 {
            unfair.push(format!("wirepool p99/p50 = {spread:.2}"));
        }
        rows.push(vec![
            name.to_string(),
            format!("{:.2}", col(0)),
            format!("{:.2}", col(1)),
            format!("{:.2}", col(2)),
            fmt_ratio(spread),
            format!("{:.2}", col(3) / 1e6),
            format!("{:.3}", col(4)),
            format!("{:.0}", col(5)),
        ]);
    }
    print_table(&header, &rows);
    decomposition(cells, rates);
    println!("### goals\n");
    let verdict = |v: &[String]| {
        if v.is_empty() {
            "met".to_owned()
        } else {
            format!("MISSED: {}", v.join("; "))
        }
    };
    println!(
        "- within 10% of the bare primitives in every cell: {}",
        verdict(&short_of_bare)
    );
    println!(
        "- ahead of every peer in the yield variant: {}",
        verdict(&behind_peer)
    );
    println!(
        "- FIFO fairness (p99 ≤ 1.5 × p50 at T=64, max 4): {}",
        verdict(&unfair)
    );
    if let Some(dir) = crate::charts::dir() {
        chart(&dir, s, cells, rates);
    }
}

/// `pool_core.svg`: every cell's cycles/s relative to the bare primitives, one panel per variant.
fn chart(
    dir: &std::path::Path,
    s: &Settings,
    cells: &[Cell],
    rates: &HashMap<(usize, usize), Vec<f64>>,
) {
    let shown: Vec<usize> = (0..MAIN).filter(|&i| i != BARE).collect();
    let panels: Vec<Panel> = [false, true]
        .into_iter()
        .map(|hold| {
            let cells: Vec<(usize, &Cell)> = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.hold_across_yield == hold)
                .collect();
            Panel {
                title: if hold {
                    "get + yield + drop"
                } else {
                    "get + drop"
                }
                .to_owned(),
                x_desc: "T tasks / max_size".to_owned(),
                y_desc: "cycles/s ÷ bare primitives'".to_owned(),
                groups: cells
                    .iter()
                    .map(|(_, c)| format!("{}/{}", c.tasks, c.max))
                    .collect(),
                series: shown.iter().map(|&i| (NAMES[i].to_owned(), i)).collect(),
                values: shown
                    .iter()
                    .map(|&i| {
                        let v = cells.iter().map(|(ci, _)| ratio(rates, *ci, i, BARE));
                        v.map(|r| r.is_finite().then_some(r)).collect()
                    })
                    .collect(),
                line: Some((1.0, "bare primitives (the limit)".to_owned())),
            }
        })
        .collect();
    let caption = format!(
        "pool_core: checkout + return, no I/O (median of {} interleaved rounds, {:?} windows, \
         2 tokio workers; 1-min load {} at the end)",
        s.rounds,
        s.window,
        crate::charts::load()
    );
    crate::charts::write(dir, "pool_core", &caption, (2, 1), (1150, 330), &panels);
}

/// What a full pool adds to the primitives, priced one piece at a time: ratios to the bare
/// primitives in the cells of `DECOMPOSE`.
fn decomposition(cells: &[Cell], rates: &HashMap<(usize, usize), Vec<f64>>) {
    println!("### decomposition: cycles/s relative to the bare primitives\n");
    let mut header = vec!["cell".to_owned(), "bare (M/s)".to_owned()];
    let shown = [6, 7, WIREPOOL, REFERENCE, 2, 4];
    header.extend(shown.iter().map(|&i| NAMES[i].to_owned()));
    let mut rows = Vec::new();
    for (ci, cell) in cells.iter().enumerate().filter(|(_, c)| c.decomposed()) {
        let variant = if cell.hold_across_yield {
            "get + yield + drop"
        } else {
            "get + drop"
        };
        let mut row = vec![
            format!("{variant}, T={}, max={}", cell.tasks, cell.max),
            format!("{:.2}", median(&rates[&(ci, BARE)]) / 1e6),
        ];
        row.extend(shown.iter().map(|&i| fmt_ratio(ratio(rates, ci, i, BARE))));
        rows.push(row);
    }
    print_table(&header, &rows);
}
