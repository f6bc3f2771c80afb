//! The public runtime surface: building a [`crate::Runtime`] (`builder`), spawning
//! (`spawn`), waiting for a coroutine (`join`) and scoped coroutines (`scope`). It
//! wires the core (`sched`), the netpoller and observability together.

pub(crate) mod builder;
pub(crate) mod handle;
pub(crate) mod join;
pub(crate) mod scope;
pub(crate) mod spawn;
