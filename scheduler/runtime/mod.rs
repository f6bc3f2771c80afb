//! The scheduler core: G (`task`), P and M (`worker`), their queues (`queue`,
//! `inject`), how idle workers sleep and wake (`idle`, `parker`), and the one
//! park/unpark interface every waiting primitive goes through (`park`).
//!
//! The core knows nothing of its clients: channels, locks, timers' users and IO
//! wait through `park`, never touching the run queues.

pub(crate) mod budget;
pub(crate) mod builder;
pub(crate) mod cancel;
pub(crate) mod context;
pub(crate) mod deadlock;
pub(crate) mod dump;
pub(crate) mod handoff;
pub(crate) mod idle;
pub(crate) mod inject;
pub(crate) mod join;
pub(crate) mod local;
pub(crate) mod metrics;
pub(crate) mod monitor;
pub(crate) mod park;
pub(crate) mod parker;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod scope;
pub(crate) mod shared;
pub(crate) mod sigquit;
pub(crate) mod spawn;
pub(crate) mod sysmon;
pub(crate) mod task;
pub(crate) mod wait;
pub(crate) mod worker;
