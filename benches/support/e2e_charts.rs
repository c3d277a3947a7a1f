//! `end_to_end.svg`: the select1 table as a picture, client CPU per query and queries/s for
//! every shape, wirepool beside its peers, the bare raw-wire client (the floor) and pgbench.

use std::collections::HashMap;
use std::path::Path;

use crate::charts::{self, Panel};
use crate::stats::median;
use crate::{Rate, Settings, NAMES, SHAPES, WORKERS};

/// (contender index in `NAMES`, colour index); pgbench comes last, in black.
const SHOWN: [(usize, usize); 5] = [(1, 0), (0, 1), (2, 4), (3, 5), (5, 6)];
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
                        let m = median(&runs.iter().map(f).collect::<Vec<_>>());
                        m.is_finite().then_some(m)
                    })
                    .collect()
            })
            .collect();
        values.push(keys.iter().map(|k| pgbench[k.1].map(|r| f(&r))).collect());
        Panel {
            title: title.to_owned(),
            x_desc: "runtime, T tasks / pool size".to_owned(),
            y_desc: y_desc.to_owned(),
            groups: groups.clone(),
            series: series.clone(),
            values,
            line: None,
        }
    };
    let panels = [
        panel(
            "client CPU per query (lower is better)",
            "CPU µs per query",
            &|r| r.cpu_per_op.as_secs_f64() * 1e6,
        ),
        panel("queries per second (higher is better)", "queries/s", &|r| {
            r.per_second
        }),
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
