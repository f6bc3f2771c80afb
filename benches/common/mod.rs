//! What the benches that run servers in child processes share.
#![allow(dead_code)] // each bench uses part of it

use std::io::{BufRead, BufReader};
use std::process::Child;

/// A number from the environment, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A child process killed when dropped, panics included.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address a server child announces as the last word of its first line on
/// stdout (piped).
pub fn announced(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("the server's first line");
    line.split_whitespace()
        .last()
        .unwrap_or_else(|| panic!("no address in the server's line {line:?}"))
        .to_owned()
}
