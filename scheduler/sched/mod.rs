//! The scheduler core: Go's G, P and M, and the one park interface.
//!
//! Glossary (Go's words, as `runtime2.go` and `proc.go` use them):
//!
//! | word | here | what |
//! |---|---|---|
//! | G | [`task`] (`G`, `Header`) | one coroutine: its closure, result, park state, fiber |
//! | M | [`worker`] (`Worker`) | an OS thread running coroutines; started Gs are bound to it |
//! | P | [`p`] (`P`), [`handoff`] (`Ps`) | the ring, stack cache, tick, rng an M needs to run Gs; sysmon hands a stuck M's P to another |
//! | runnext | `Worker::runnext` | the G just woken or spawned here: it runs next |
//! | woken | `Worker::woken` | started Gs woken by timers, IO or other threads, displaced from runnext: ahead of `pinned` |
//! | pinned | `Worker::pinned` | started Gs bound to this M, runnable; never stolen |
//! | ring | [`queue`], `P::steal` | a P's unstarted or migratable Gs: stealable by other Ms |
//! | inbox | `Remote::inbox` ([`shared`]) | this M's started Gs woken by other threads |
//! | injector | [`inject`] | Gs from outside the runtime, and ring overflow |
//! | idle, spinning | [`idle`], [`sleeper`] | how Ms sleep, search for work and wake |
//! | sysmon | [`sysmon`] | the monitor thread: preemption requests, hog warnings (judged by [`thread_clock`]), P hand-off, deadlock checks |
//! | park / unpark | [`park`] | how anything waits; the only door clients use |
//! | interrupt | [`interrupt`] | what else may end a wait (a context): `Until` = deadline and/or interrupt |
//! | netpoller | [`driver`] | the IO an idle M sleeps in; `netpoll` implements it |
//! | timers | [`timers`] | deadlines of parked Gs, per M (and shared for migratable Gs) |
//!
//! The core knows nothing of its clients: channels, locks, sleeps and IO wait through
//! [`park`], never touching the run queues, and the netpoller plugs in through
//! [`driver`]. What the core shows the rest of the crate is `pub(crate)`; the rest
//! stays inside this folder.

pub(crate) mod budget;
pub(crate) mod cancel;
pub(crate) mod context;
pub(crate) mod counters;
pub(crate) mod deadlock;
pub(crate) mod dedicated;
pub(crate) mod driver;
pub(crate) mod handoff;
pub(crate) mod idle;
pub(crate) mod inject;
pub(crate) mod interrupt;
pub(crate) mod local;
pub(crate) mod p;
pub(crate) mod park;
pub(crate) mod placement;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod shared;
pub(crate) mod sleeper;
pub(crate) mod spawn_error;
pub(crate) mod sysmon;
pub(crate) mod task;
pub(crate) mod template;
mod thread_clock;
mod timers;
pub(crate) mod trace;
pub(crate) mod wait;
pub(crate) mod warnings;
pub(crate) mod worker;
