//! Observability: what a team looks at when the runtime misbehaves.
//!
//! - [`dump`]: every live coroutine and what it waits on (Go's goroutine dump), also
//!   printed on SIGQUIT ([`sigquit`]) and in the deadlock report;
//! - [`metrics`]: counters of what the scheduler did, as [`crate::Metrics`];
//! - [`schedtrace`]: the schedtrace thread (`GODEBUG=schedtrace`'s line);
//! - [`trace`]: the scheduler trace's file (`CORUN_TRACE`), as Chrome trace-event
//!   JSON.
//!
//! It reads the core (`sched`) and never changes it.

pub(crate) mod dump;
pub(crate) mod metrics;
pub(crate) mod schedtrace;
pub(crate) mod sigquit;
pub(crate) mod trace;
mod trace_json;
