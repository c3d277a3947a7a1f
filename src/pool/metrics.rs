//! The pool in an operator's dashboards (feature `metrics`): [`Pool::export_metrics`] reports a
//! [`PoolStats`] through the `metrics` facade, each series labelled with the pool's name.
//! Names follow Prometheus' conventions (`_total` counters, `_seconds` units); the histograms
//! go out as quantile gauges (`quantile` = 0.5, 0.99, 1), since the pool keeps buckets, not
//! samples.

use std::time::Duration;

use metrics::{counter, gauge};

use super::facade::Pool;
use super::manage::Manage;
use super::stats::{Percentiles, PoolStats};

impl<M: Manage> Pool<M> {
    /// Reports the pool's gauges, counters and histogram quantiles (see [`Pool::stats`])
    /// through the `metrics` crate's recorder, labelled `pool` = the pool's name: call it as
    /// often as the dashboard scrapes (it reads the stats once, without a lock on the fast
    /// path). Counters are reported as running totals (`absolute`); `pop_stats` resets them.
    ///
    /// ```
    /// # use wirepool::pool::{ConnState, Manage};
    /// # struct Counter;
    /// # impl Manage for Counter {
    /// #     type Connection = u32;
    /// #     async fn connect(&self) -> wirepool::Result<u32> { Ok(0) }
    /// #     fn state(&self, _: &u32) -> ConnState { ConnState::Idle }
    /// #     fn check_closed(&self, _: &mut u32) -> bool { false }
    /// #     async fn ping(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     async fn rollback(&self, _: &mut u32) -> wirepool::Result<()> { Ok(()) }
    /// #     fn cancel(&self, _: &u32) -> impl std::future::Future<Output = ()> + Send + 'static {
    /// #         async {}
    /// #     }
    /// #     async fn close(&self, _: u32) {}
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = wirepool::Pool::builder_for(Counter).name("app").open().await?;
    /// // With a recorder installed (metrics-exporter-prometheus, ...), every few seconds:
    /// pool.export_metrics(); // wirepool_pool_size{pool="app"} 4, ...
    /// # Ok::<(), wirepool::Error>(()) }).unwrap();
    /// ```
    pub fn export_metrics(&self) {
        export(self.name(), &self.stats());
    }
}

fn export(pool: &str, s: &PoolStats) {
    let gauges = [
        ("wirepool_pool_min", s.pool_min),
        ("wirepool_pool_max", s.pool_max),
        ("wirepool_pool_size", s.pool_size),
        ("wirepool_pool_available", s.pool_available),
        ("wirepool_requests_waiting", s.requests_waiting),
        ("wirepool_connecting", s.connecting),
    ];
    for (name, value) in gauges {
        gauge!(name, "pool" => pool.to_owned()).set(value as f64);
    }
    let counters = [
        ("wirepool_requests_total", s.requests_num),
        ("wirepool_requests_queued_total", s.requests_queued),
        ("wirepool_requests_errors_total", s.requests_errors),
        ("wirepool_returns_bad_total", s.returns_bad),
        ("wirepool_connections_total", s.connections_num),
        ("wirepool_connections_errors_total", s.connections_errors),
        ("wirepool_connections_lost_total", s.connections_lost),
        ("wirepool_connections_drained_total", s.connections_drained),
        ("wirepool_leaks_detected_total", s.leaks_detected),
    ];
    for (name, value) in counters {
        counter!(name, "pool" => pool.to_owned()).absolute(value);
    }
    let histograms = [
        ("wirepool_checkout_wait_seconds", s.checkout_wait),
        ("wirepool_hold_seconds", s.hold_time),
        ("wirepool_connect_seconds", s.connect_time),
    ];
    for (name, p) in histograms {
        quantiles(pool, name, p);
    }
}

fn quantiles(pool: &str, name: &'static str, p: Percentiles) {
    let points: [(&'static str, Duration); 3] = [("0.5", p.p50), ("0.99", p.p99), ("1", p.max)];
    for (quantile, value) in points {
        gauge!(name, "pool" => pool.to_owned(), "quantile" => quantile).set(value.as_secs_f64());
    }
    counter!(format!("{name}_count"), "pool" => pool.to_owned()).absolute(p.count);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    use super::*;

    /// Every series' last value, by name and labels.
    #[derive(Default, Clone)]
    struct Seen(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Series(Seen, String);

    impl CounterFn for Series {
        fn increment(&self, v: u64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() += v as f64;
        }
        fn absolute(&self, v: u64) {
            self.0 .0.lock().unwrap().insert(self.1.clone(), v as f64);
        }
    }

    impl GaugeFn for Series {
        fn increment(&self, v: f64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() += v;
        }
        fn decrement(&self, v: f64) {
            GaugeFn::increment(self, -v);
        }
        fn set(&self, v: f64) {
            self.0 .0.lock().unwrap().insert(self.1.clone(), v);
        }
    }

    fn series(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for Seen {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Series(self.clone(), series(key))))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(Series(self.clone(), series(key))))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn every_figure_goes_out_labelled_with_the_pool() {
        let mut s = PoolStats {
            pool_max: 5,
            pool_size: 3,
            requests_num: 42,
            ..PoolStats::default()
        };
        s.checkout_wait = Percentiles {
            count: 7,
            p50: Duration::from_millis(2),
            p99: Duration::from_millis(30),
            max: Duration::from_millis(31),
        };
        let seen = Seen::default();
        metrics::with_local_recorder(&seen, || export("app", &s));
        let got = seen.0.lock().unwrap();
        assert_eq!(got["wirepool_pool_max{pool=app}"], 5.0);
        assert_eq!(got["wirepool_pool_size{pool=app}"], 3.0);
        assert_eq!(got["wirepool_requests_total{pool=app}"], 42.0);
        assert_eq!(
            got["wirepool_checkout_wait_seconds{pool=app,quantile=0.99}"],
            0.03
        );
        assert_eq!(got["wirepool_checkout_wait_seconds_count{pool=app}"], 7.0);
        assert_eq!(got["wirepool_connect_seconds_count{pool=app}"], 0.0);
    }
}
