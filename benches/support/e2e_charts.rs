//! `end_to_end.svg`: the select1 table as a picture. Client CPU per query and queries/s for
//! every shape, as the table's ratios to deadpool-postgres (the median over rounds of each
//! round's ratio, which a busy machine disturbs less than the absolute figures): wirepool beside
//! bb8-postgres, the bare raw-wire client (the floor) and pgbench.

use std::collections::HashMap;
use std::path::Path;

use crate::charts::{self, Panel};
use crate::stats::median;
use crate::{Rate, Settings, NAMES, REFERENCE, SHAPES, WORKERS};

/// (contender index in `NAMES`, colour index); deadpool-postgres is the line at 1, pgbench comes
/// last, in black.
const SHOWN: [(usize, usize); 4] = [(1, 0), (2, 4), (3, 5), (5, 6)];
const PGBENCH_COLOUR: usize = 7;

pub(crate) fn select1(
    dir: &Path,
    s: &Settings,
    transport: &str,
    rates: &HashMap<(usize, usize, usize), Vec<Rate>>,
    pgbench: &[Option<Rate>],
) {
    let mut groups = Vec::new();
    let mut keys = Vec::new();
    for workers in WORKERS {
        for (si, &(tasks, size)) in SHAPES.iter().enumerate() {
            let plural = if workers > 1 { "s" } else { "" };
            groups.push(format!("{workers} worker{plural}, {tasks}/{size}"));
            keys.push((workers, si));
        }
    }
    let mut series: Vec<(String, usize)> = SHOWN
        .iter()
        .map(|&(i, colour)| (NAMES[i].to_owned(), colour))
        .collect();
    series.push(("pgbench -c T -j T (ceiling)".to_owned(), PGBENCH_COLOUR));
    let panel = |title: &str, y_desc: &str, f: &dyn Fn(&Rate) -> f64| {
        let mut values: Vec<Vec<Option<f64>>> = SHOWN
            .iter()
            .map(|&(i, _)| {
                keys.iter()
                    .map(|k| {
                        let runs = rates.get(&(k.0, k.1, i))?;
                        let reference = rates.get(&(k.0, k.1, REFERENCE))?;
                        let per_round: Vec<f64> = runs
                            .iter()
                            .zip(reference)
                            .map(|(a, b)| f(a) / f(b))
                            .collect();
                        let m = median(&per_round);
                        m.is_finite().then_some(m)
                    })
                    .collect()
            })
            .collect();
        values.push(
            keys.iter()
                .map(|k| {
                    let reference = rates.get(&(k.0, k.1, REFERENCE))?;
                    let m = median(&reference.iter().map(f).collect::<Vec<_>>());
                    pgbench[k.1].map(|r| f(&r) / m).filter(|x| x.is_finite())
                })
                .collect(),
        );
        Panel {
            title: title.to_owned(),
            x_desc: "runtime, T tasks / pool size".to_owned(),
            y_desc: y_desc.to_owned(),
            groups: groups.clone(),
            series: series.clone(),
            values,
            line: Some((1.0, NAMES[REFERENCE].to_owned())),
        }
    };
    let panels = [
        panel(
            "client CPU per query (lower is better)",
            "÷ deadpool-postgres'",
            &|r| r.cpu_per_op.as_secs_f64(),
        ),
        panel(
            "queries per second (higher is better)",
            "÷ deadpool-postgres'",
            &|r| r.per_second,
        ),
    ];
    let caption = format!(
        "SELECT 1 through the pool over {transport} (median of {} interleaved rounds, {:?} \
         windows; 1-min load {} at the end)",
        s.rounds,
        s.window,
        charts::load()
    );
    charts::write(dir, "end_to_end", &caption, (2, 1), (1150, 330), &panels);
}
