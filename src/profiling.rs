//! In-process CPU profiling for `serve`, behind the `profiling` feature (`cargo build --release
//! --features profiling`): `pprof` samples every thread with `SIGPROF` (no kernel perf events
//! needed, so it works in containers and VMs that forbid them). With `PARTNERHUB_PROFILE=<path>`,
//! sampling runs from start-up to shutdown, then `<path>.svg` (a flame graph) and `<path>.txt`
//! (the functions with the most samples, self and inclusive) and `<path>.folded` (every sampled
//! stack, in the folded format) are written.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// A running profiler, or nothing when `PARTNERHUB_PROFILE` is unset.
pub struct Profile {
    guard: pprof::ProfilerGuard<'static>,
    path: String,
}

impl Profile {
    /// Starts sampling at 999 Hz when `PARTNERHUB_PROFILE` is set.
    pub fn start() -> Option<Self> {
        let path = std::env::var("PARTNERHUB_PROFILE").ok().filter(|p| !p.is_empty())?;
        match pprof::ProfilerGuardBuilder::default()
            .frequency(999)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(guard) => {
                tracing::info!(%path, "CPU profiling on");
                Some(Self { guard, path })
            }
            Err(err) => {
                tracing::warn!(error = %err, "CPU profiling could not start");
                None
            }
        }
    }

    /// Writes the flame graph and the top functions.
    pub fn finish(self) {
        let report = match self.guard.report().build() {
            Ok(report) => report,
            Err(err) => return tracing::warn!(error = %err, "no profile report"),
        };
        match std::fs::File::create(format!("{}.svg", self.path)) {
            Ok(file) => {
                if let Err(err) = report.flamegraph(file) {
                    tracing::warn!(error = %err, "flame graph not written");
                }
            }
            Err(err) => tracing::warn!(error = %err, "flame graph not written"),
        }
        // The stacks themselves, one line each (root first, `;`-separated, then the count): the
        // folded format that flame graph tools and ad-hoc scripts read.
        let mut folded = String::new();
        for (frames, count) in &report.data {
            let mut names: Vec<String> =
                frames.frames.iter().flat_map(|frame| frame.iter().map(|symbol| symbol.name())).collect();
            names.reverse();
            let _ = writeln!(folded, "{} {count}", names.join(";"));
        }
        if let Err(err) = std::fs::write(format!("{}.folded", self.path), folded) {
            tracing::warn!(error = %err, "folded stacks not written");
        }
        let mut total = 0isize;
        let mut own: HashMap<String, isize> = HashMap::new();
        let mut inclusive: HashMap<String, isize> = HashMap::new();
        for (frames, count) in &report.data {
            total += count;
            let names: Vec<String> =
                frames.frames.iter().flat_map(|frame| frame.iter().map(|symbol| symbol.name())).collect();
            if let Some(leaf) = names.first() {
                *own.entry(leaf.clone()).or_default() += count;
            }
            let unique: HashSet<&String> = names.iter().collect();
            for name in unique {
                *inclusive.entry(name.clone()).or_default() += count;
            }
        }
        let mut text = format!("{total} samples\n\n== self\n");
        table(&mut text, own, total);
        text.push_str("\n== inclusive\n");
        table(&mut text, inclusive, total);
        if let Err(err) = std::fs::write(format!("{}.txt", self.path), text) {
            tracing::warn!(error = %err, "profile summary not written");
        }
        tracing::info!(path = %self.path, samples = total, "CPU profile written");
    }
}

fn table(out: &mut String, counts: HashMap<String, isize>, total: isize) {
    let mut rows: Vec<(String, isize)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (name, count) in rows.into_iter().take(60) {
        let share = 100.0 * count as f64 / total.max(1) as f64;
        let _ = writeln!(out, "{share:6.2}% {count:8}  {name}");
    }
}
