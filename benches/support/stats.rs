//! Small statistics and table helpers shared by the benchmarks: medians of interleaved rounds,
//! percentiles of latency samples, and markdown tables.
#![allow(dead_code)]

/// The median (mean of the two middle values for an even count); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// The median of per-round ratios `f(run) / f(reference)`, each run against the reference's
/// run of the same round (interleaved rounds share the machine's state).
pub fn median_ratio<T>(runs: &[T], reference: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let v: Vec<f64> = runs
        .iter()
        .zip(reference)
        .map(|(a, b)| f(a) / f(b))
        .collect();
    median(&v)
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The order in which round `round` runs `n` contenders: rotated by one each round, so no
/// contender always runs first (cold) or right after the same neighbour.
pub fn rotation(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n)
}

/// Prints a markdown table.
pub fn print_table(header: &[String], rows: &[Vec<String>]) {
    println!("| {} |", header.join(" | "));
    let rule: Vec<&str> = header.iter().map(|_| "---").collect();
    println!("|{}|", rule.join("|"));
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
    println!();
}

/// A ratio with two decimals, or `—` when it is undefined.
pub fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "—".to_owned()
    }
}
