//! Coroutine stacks: `mmap`ed in slabs, one guard page each, pooled.
//!
//! A slab is one anonymous mapping holding `slab_len` stacks laid out as
//! `[guard|body][guard|body]...`, so each body overflows into its own guard.
//! Guards are installed with `MADV_GUARD_INSTALL` (Linux >= 6.13), which
//! adds no VMA: a slab stays one line of `/proc/self/maps` and a million
//! stacks fit under `vm.max_map_count`. Older kernels fall back to
//! `mprotect(PROT_NONE)`, which costs one extra map per stack.

use crate::loom::sync::{Mutex, MutexGuard};
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use corosensei::stack::StackPointer;

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>`; libc 0.2 does not export it yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Most stacks carved from one mapping.
const SLAB_LEN: usize = 64;
/// Cap on one slab's address space, so huge stacks get shorter slabs.
const SLAB_MAX_BYTES: usize = 64 << 20;
/// A cache holding more than this sends half of its stacks to the pool.
const CACHE_MAX: usize = 64;
/// Stacks moved between a cache and the shared list in one locked step.
const BATCH: usize = CACHE_MAX / 2;
/// Shared stacks above this count get their memory released.
const WARM_MAX: usize = 1024;

const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;

/// How guards are installed; probed once, on the first guard.
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// The system page size, read once.
pub(super) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// Whether guards cost no extra map (`MADV_GUARD_INSTALL` works here).
/// Only meaningful once a stack has been created.
pub fn guards_are_free() -> bool {
    GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
}

/// Rounds `size` up to whole pages and checks it leaves room to run.
pub(crate) fn checked_size(size: usize) -> io::Result<usize> {
    let page = page_size();
    let min = (2 * page).max(corosensei::stack::MIN_STACK_SIZE);
    let rounded = size.checked_add(page - 1).map(|s| s & !(page - 1));
    match rounded {
        Some(s) if s >= min => Ok(s),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coroutine stack size {size} is invalid: need at least {min} bytes"),
        )),
    }
}

/// One anonymous mapping; unmapped when the last stack in it drops.
struct Mapping {
    addr: usize,
    len: usize,
    /// Stacks carved from this mapping, subtracted from `counter` on drop.
    stacks: usize,
    counter: Option<Arc<AtomicUsize>>,
}

impl Mapping {
    /// Maps `len` bytes of lazily committed read-write memory.
    fn new(len: usize) -> io::Result<Mapping> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address
        // cannot alias any existing Rust object.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            addr: p as usize,
            len,
            stacks: 0,
            counter: None,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own [addr, addr+len) and every Stack inside it holds an
        // Arc to us, so none is alive any more.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
        if let Some(c) = &self.counter {
            c.fetch_sub(self.stacks, Ordering::Relaxed);
        }
    }
}

/// Makes `[lo, lo+page)` fault on any access.
fn install_guard(lo: usize) -> io::Result<()> {
    let page = page_size();
    let ptr = lo as *mut libc::c_void;
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: the page lies in a mapping we own and hold no references
        // into; a guard only changes how future accesses fault.
        if unsafe { libc::madvise(ptr, page, MADV_GUARD_INSTALL) } == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // EINVAL means the kernel predates guard markers: remember and fall back.
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; PROT_NONE on a page nothing references.
    if unsafe { libc::mprotect(ptr, page, libc::PROT_NONE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A coroutine stack with a guard page at its lowest page.
///
/// Keeps its mapping alive; the mapping is unmapped when its last stack drops.
pub struct Stack {
    /// Lowest address, the start of the guard page.
    limit: usize,
    /// Highest address, one past the usable body.
    base: usize,
    /// Bytes skipped below `base` so that stack tops do not all share one cache set
    /// (they are page aligned; a switch touches the top lines of each). Kept under
    /// 1 KiB: a parked coroutine's frames then usually fit in the top page (16
    /// colours of 64 bytes; 64 colours spread over the whole page cost a second
    /// resident page per sleeping coroutine more often: 5.0 KB against 4.3 KB in w5).
    color: usize,
    /// Bytes at the top (below the colour) set aside for the stack's owner, e.g. the
    /// fiber that runs on it; the coroutine's frames start below them.
    reserved: usize,
    /// Registered with LeakSanitizer as a root region (`sanitize` builds only).
    root: bool,
    _map: Arc<Mapping>,
}

// SAFETY: [limit, base) is a mapping owned through `_map` and used by nobody
// else; its lowest page is a guard (installed before a Stack is built), the
// body is at least two pages (>= MIN_STACK_SIZE), and both ends are page
// aligned, hence STACK_ALIGNMENT aligned. `limit` includes the guard.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        // A mapping never starts at address 0, so base > limit > 0. `color` is a
        // multiple of 64 below one page, so the result stays aligned and above the body's start.
        // `reserved` is a multiple of 64 well below the body's size.
        NonZeroUsize::new(self.base - self.color - self.reserved).expect("stack base is null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.limit).expect("stack limit is null")
    }
}

impl Stack {
    /// Registers the body of the stack with LeakSanitizer while a coroutine may
    /// run on it, and unregisters it when it goes back to a pool: a parked
    /// coroutine's frames hold pointers to heap objects nothing else reaches, and
    /// LSan scans only thread stacks and registered regions. A pooled stack is not
    /// scanned, so stale pointers in it do not hide leaks. The guard page is left
    /// out (reading it would fault the leak check). A no-op without the `sanitize`
    /// feature.
    fn set_root(&mut self, on: bool) {
        if lsan::ENABLED && on != self.root {
            let lo = self.limit + page_size();
            if on {
                lsan::register(lo, self.base - lo);
            } else {
                lsan::unregister(lo, self.base - lo);
            }
            self.root = on;
        }
    }

    /// Maps a standalone stack of `size` usable bytes (rounded up to pages)
    /// plus a guard page below it.
    pub fn new(size: usize) -> io::Result<Stack> {
        let size = checked_size(size)?;
        let page = page_size();
        let mut map = Mapping::new(size + page)?;
        map.stacks = 1;
        install_guard(map.addr)?;
        let (limit, base) = (map.addr, map.addr + page + size);
        let mut s = Stack {
            limit,
            base,
            color: 0,
            reserved: 0,
            root: false,
            _map: Arc::new(map),
        };
        s.set_root(true); // a standalone stack is in use for all its life
        Ok(s)
    }

    /// Sets aside `bytes` (rounded up to 64, at most 1 KiB) at the top of the stack
    /// and returns their address, 64-byte aligned; code running on the stack starts
    /// below them. Replaces any earlier reservation.
    pub(super) fn reserve_top(&mut self, bytes: usize) -> *mut u8 {
        let r = bytes.div_ceil(64) * 64;
        assert!(
            r <= 1024,
            "stack top reservation of {bytes} bytes is too large"
        );
        self.reserved = r;
        (self.base - self.color - r) as *mut u8
    }

    /// Drops the reservation made by [`Stack::reserve_top`].
    pub(super) fn unreserve_top(&mut self) {
        self.reserved = 0;
    }

    /// Bytes usable above the guard page.
    pub fn usable_size(&self) -> usize {
        self.base - self.limit - page_size()
    }

    /// The `[lo, hi)` address range of the guard page.
    pub fn guard(&self) -> (usize, usize) {
        (self.limit, self.limit + page_size())
    }

    /// Hands the body's pages back to the kernel; they read as zero later.
    /// The guard stays installed.
    pub fn release_memory(&self) {
        let lo = self.limit + page_size();
        // SAFETY: only the body is discarded; a pooled stack has no live
        // frames, and no Rust reference points into stack memory we own.
        unsafe { libc::madvise(lo as *mut libc::c_void, self.base - lo, libc::MADV_DONTNEED) };
    }

    /// Bytes from the base down to the lowest resident page of the body:
    /// how deep the stack has been touched since it was mapped or released.
    pub fn high_water(&self) -> usize {
        high_water(self.body())
    }

    /// The `[lo, hi)` address range of the body (above the guard page).
    ///
    /// ```
    /// let s = corun::coroutine::stack::Stack::new(64 * 1024).unwrap();
    /// let (lo, hi) = s.body();
    /// assert_eq!(hi - lo, s.usable_size());
    /// ```
    pub fn body(&self) -> (usize, usize) {
        (self.limit + page_size(), self.base)
    }
}

/// Bytes from `hi` down to the lowest resident page of the page-aligned range
/// `[lo, hi)`, as [`Stack::high_water`]. Harmless on any range: a range that is not
/// (or no longer) mapped reads as 0.
///
/// ```
/// use corun::coroutine::stack::{high_water, Stack};
/// let s = Stack::new(64 * 1024).unwrap();
/// assert_eq!(high_water(s.body()), 0); // nothing touched yet
/// ```
pub fn high_water((lo, hi): (usize, usize)) -> usize {
    let page = page_size();
    let mut addr = lo;
    let mut vec = [0u8; 64];
    while addr < hi {
        let pages = ((hi - addr) / page).min(vec.len());
        // SAFETY: `mincore` only reads page tables and writes one byte per page into
        // `vec`, which has room for `pages`; an unmapped range makes it fail (ENOMEM),
        // it never touches the memory itself.
        let rc =
            unsafe { libc::mincore(addr as *mut libc::c_void, pages * page, vec.as_mut_ptr()) };
        if rc != 0 {
            return 0;
        }
        if let Some(i) = vec[..pages].iter().position(|b| b & 1 != 0) {
            return hi - (addr + i * page);
        }
        addr += pages * page;
    }
    0
}

/// Stacks in the shared list: warm ones first handed out, cold ones released.
#[derive(Default)]
struct Shared {
    warm: Vec<Stack>,
    cold: Vec<Stack>,
}

/// A per-runtime pool of equally sized stacks, carved from slabs.
pub struct StackPool {
    stack_size: usize,
    slab_len: usize,
    shared: Mutex<Shared>,
    pooled: AtomicUsize,
    mapped: Arc<AtomicUsize>,
}

/// A per-processor stack cache, used only by its owner and so never locked.
///
/// Stacks left in it when it drops are freed, not returned to the pool;
/// call [`StackCache::drain_into`] to keep them.
#[derive(Default)]
pub struct StackCache {
    stacks: Vec<Stack>,
}

impl StackCache {
    /// An empty cache.
    pub fn new() -> Self {
        StackCache {
            stacks: Vec::with_capacity(CACHE_MAX + 1),
        }
    }

    /// Gives every cached stack back to `pool`'s shared list.
    pub fn drain_into(&mut self, pool: &StackPool) {
        pool.give(self.stacks.drain(..));
    }

    /// Stacks currently cached.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether the cache holds no stack.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }
}

impl StackPool {
    /// A pool of stacks with `stack_size` usable bytes, rounded up to pages.
    /// Fails with `InvalidInput` below two pages.
    pub fn new(stack_size: usize) -> io::Result<StackPool> {
        let stack_size = checked_size(stack_size)?;
        let stride = stack_size + page_size();
        Ok(StackPool {
            stack_size,
            slab_len: (SLAB_MAX_BYTES / stride).clamp(1, SLAB_LEN),
            shared: Mutex::new(Shared::default()),
            pooled: AtomicUsize::new(0),
            mapped: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Usable bytes of each stack.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Stacks per slab.
    pub fn slab_len(&self) -> usize {
        self.slab_len
    }

    /// Stacks in live slabs, whether in use or pooled.
    pub fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Stacks in the shared list (not counting per-processor caches).
    pub fn pooled(&self) -> usize {
        self.pooled.load(Ordering::Relaxed)
    }

    /// Takes a stack: from `cache`, else a batch from the shared list,
    /// else a new slab whose spare stacks go into `cache`.
    #[inline]
    pub fn get(&self, cache: &mut StackCache) -> io::Result<Stack> {
        let mut s = match cache.stacks.pop() {
            Some(s) => s,
            None => self.get_slow(cache)?,
        };
        s.set_root(true);
        Ok(s)
    }

    #[cold]
    fn get_slow(&self, cache: &mut StackCache) -> io::Result<Stack> {
        {
            let mut guard = self.lock();
            let sh = &mut *guard;
            for list in [&mut sh.warm, &mut sh.cold] {
                let n = list.len().min(BATCH - cache.stacks.len());
                cache.stacks.extend(list.drain(list.len() - n..));
            }
            let total = sh.warm.len() + sh.cold.len();
            self.pooled.store(total, Ordering::Relaxed);
        }
        if let Some(s) = cache.stacks.pop() {
            return Ok(s);
        }
        self.carve(cache)
    }

    /// Maps a new slab, keeps one stack for the caller and caches the rest.
    fn carve(&self, cache: &mut StackCache) -> io::Result<Stack> {
        let page = page_size();
        let stride = self.stack_size + page;
        let mut map = Mapping::new(stride * self.slab_len)?;
        for i in 0..self.slab_len {
            // On error `map` drops and unmaps the whole slab.
            install_guard(map.addr + i * stride)?;
        }
        map.stacks = self.slab_len;
        map.counter = Some(self.mapped.clone());
        self.mapped.fetch_add(self.slab_len, Ordering::Relaxed);
        let map = Arc::new(map);
        // Highest stack first so the lowest ends on top of the cache.
        for i in (0..self.slab_len).rev() {
            let limit = map.addr + i * stride;
            let _map = map.clone();
            cache.stacks.push(Stack {
                limit,
                base: limit + stride,
                color: (i * 7 % 16) * 64,
                reserved: 0,
                root: false,
                _map,
            });
        }
        Ok(cache.stacks.pop().expect("slab has at least one stack"))
    }

    /// Returns a stack to `cache`; an overfull cache spills half its
    /// stacks to the shared list.
    #[inline]
    pub fn put(&self, cache: &mut StackCache, mut s: Stack) {
        s.set_root(false);
        debug_assert_eq!(s.usable_size(), self.stack_size, "stack from another pool");
        cache.stacks.push(s);
        if cache.stacks.len() > CACHE_MAX {
            // Spill the oldest (coldest) half, keep the recently used ones.
            self.give(cache.stacks.drain(..BATCH));
        }
    }

    /// Adds stacks to the shared list, releasing the memory of any excess.
    fn give(&self, stacks: impl Iterator<Item = Stack>) {
        let excess: Vec<Stack> = {
            let mut sh = self.lock();
            sh.warm.extend(stacks);
            let n = sh.warm.len().saturating_sub(WARM_MAX);
            let excess = sh.warm.drain(..n).collect();
            self.pooled
                .store(sh.warm.len() + sh.cold.len() + n, Ordering::Relaxed);
            excess
        };
        if excess.is_empty() {
            return;
        }
        // madvise outside the lock: it is a syscall per stack.
        for s in &excess {
            s.release_memory();
        }
        self.lock().cold.extend(excess);
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic under this lock leaves the lists consistent: keep going.
        self.shared.lock()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.set_root(false);
    }
}

/// LeakSanitizer's root regions (`sanitize` builds, which link the ASan runtime).
#[cfg(feature = "sanitize")]
mod lsan {
    pub(super) const ENABLED: bool = true;

    extern "C" {
        fn __lsan_register_root_region(p: *const libc::c_void, size: usize);
        fn __lsan_unregister_root_region(p: *const libc::c_void, size: usize);
    }

    pub(crate) fn register(addr: usize, len: usize) {
        // SAFETY: the ASan runtime (linked by `-Zsanitizer=address`, which the
        // `sanitize` feature requires) only records the range here; it reads it at
        // the leak check, and the range is unregistered before it is unmapped.
        unsafe { __lsan_register_root_region(addr as *const libc::c_void, len) }
    }

    pub(super) fn unregister(addr: usize, len: usize) {
        // SAFETY: as `register`, with a range registered by it and not yet removed.
        unsafe { __lsan_unregister_root_region(addr as *const libc::c_void, len) }
    }
}

#[cfg(not(feature = "sanitize"))]
mod lsan {
    pub(super) const ENABLED: bool = false;
    pub(crate) fn register(_addr: usize, _len: usize) {}
    pub(super) fn unregister(_addr: usize, _len: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Runs `f` in a forked child and returns its raw wait status.
    /// The child exits with `f`'s return value without unwinding.
    pub(crate) fn in_child(f: impl FnOnce() -> i32) -> libc::c_int {
        // SAFETY: the child only runs `f` and then `_exit`s; glibc keeps
        // malloc usable after fork, and the child never touches locks that
        // other test threads might have held.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = f();
            // SAFETY: leaving the child without running the harness's exit code.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    fn died_by(status: libc::c_int, sig: libc::c_int) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == sig
    }

    /// `/proc/self/maps` lines overlapping any of `ranges`.
    fn maps_overlapping(ranges: &[(usize, usize)]) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter(|l| {
                let r = l.split(' ').next().unwrap();
                let (a, b) = r.split_once('-').unwrap();
                let a = usize::from_str_radix(a, 16).unwrap();
                let b = usize::from_str_radix(b, 16).unwrap();
                ranges.iter().any(|&(lo, hi)| a < hi && lo < b)
            })
            .count()
    }

    fn range(s: &Stack) -> (usize, usize) {
        (s.limit, s.base)
    }

    fn write_guard(s: &Stack) {
        let p = s.guard().0 as *mut u8;
        // SAFETY: deliberately faults: the child is expected to die here.
        unsafe { std::ptr::write_volatile(p.add(8), 1) };
    }

    #[test]
    fn thread_safety() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Stack>();
        send_sync::<StackPool>();
        send_sync::<StackCache>();
    }

    #[test]
    fn rejects_tiny_stacks() {
        let e = StackPool::new(page_size()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("need at least"), "{e}");
        assert!(Stack::new(0).is_err());
        assert_eq!(
            StackPool::new(2 * page_size() + 1).unwrap().stack_size(),
            3 * page_size()
        );
    }

    #[test]
    fn geometry() {
        let s = Stack::new(64 << 10).unwrap();
        assert_eq!(s.usable_size(), 64 << 10);
        assert_eq!(s.guard(), (s.limit, s.limit + page_size()));
        use corosensei::stack::Stack as _;
        assert_eq!(s.base().get() - s.limit().get(), (64 << 10) + page_size());
        assert_eq!(
            maps_overlapping(&[range(&s)]),
            1 + usize::from(!guards_are_free())
        );
    }

    #[test]
    fn guard_faults() {
        let pool = StackPool::new(32 << 10).unwrap();
        let mut cache = StackCache::new();
        let a = pool.get(&mut cache).unwrap();
        let b = pool.get(&mut cache).unwrap();
        // The body is writable right up to the guard.
        // SAFETY: the lowest body byte of a stack we own and do not run on.
        unsafe { std::ptr::write_volatile(a.guard().1 as *mut u8, 7) };
        assert!(died_by(
            in_child(|| {
                write_guard(&b);
                0
            }),
            libc::SIGSEGV
        ));
        let s = Stack::new(16 << 10).unwrap();
        assert!(died_by(
            in_child(|| {
                write_guard(&s);
                0
            }),
            libc::SIGSEGV
        ));
    }

    #[test]
    fn dontneed_keeps_guard_and_zeroes_body() {
        let s = Stack::new(64 << 10).unwrap();
        let top = (s.base - 8) as *mut u64;
        // SAFETY: the top word of a body we own.
        unsafe { top.write_volatile(0xdead) };
        assert!(s.high_water() >= page_size());
        s.release_memory();
        assert_eq!(s.high_water(), 0);
        // SAFETY: as above.
        assert_eq!(unsafe { top.read_volatile() }, 0);
        assert!(died_by(
            in_child(|| {
                write_guard(&s);
                0
            }),
            libc::SIGSEGV
        ));
        // Even DONTNEED over the guard itself leaves it installed.
        let status = in_child(|| {
            // SAFETY: discards pages of a mapping the child owns.
            unsafe { libc::madvise(s.limit as *mut _, s.base - s.limit, libc::MADV_DONTNEED) };
            write_guard(&s);
            0
        });
        assert!(died_by(status, libc::SIGSEGV));
    }

    #[test]
    fn ten_thousand_stacks_few_maps() {
        let pool = StackPool::new(16 << 10).unwrap();
        let mut cache = StackCache::new();
        let stacks: Vec<Stack> = (0..10_000).map(|_| pool.get(&mut cache).unwrap()).collect();
        let slabs = 10_000usize.div_ceil(pool.slab_len());
        assert_eq!(pool.mapped(), slabs * pool.slab_len());
        let ranges: Vec<_> = stacks.iter().map(range).collect();
        let maps = maps_overlapping(&ranges);
        if guards_are_free() {
            // Adjacent slabs may merge into one map, never split.
            assert!(maps <= slabs, "{maps} maps for {slabs} slabs");
        } else {
            assert!(maps <= slabs * (2 * pool.slab_len() + 1));
        }
        for s in stacks {
            pool.put(&mut cache, s);
        }
        assert!(cache.len() <= CACHE_MAX);
        assert!(pool.pooled() >= 10_000 - CACHE_MAX);
        // Nothing was lost or created by pooling.
        assert_eq!(pool.mapped(), slabs * pool.slab_len());
    }

    #[test]
    fn excess_pooled_stacks_release_memory() {
        let pool = StackPool::new(16 << 10).unwrap();
        let mut cache = StackCache::new();
        let stacks: Vec<Stack> = (0..WARM_MAX + 200)
            .map(|_| pool.get(&mut cache).unwrap())
            .collect();
        for s in &stacks {
            // SAFETY: touch the top word of an idle stack we own.
            unsafe { ((s.base - 8) as *mut u64).write_volatile(1) };
        }
        let tops: Vec<usize> = stacks.iter().map(|s| s.base - 8).collect();
        for s in stacks {
            pool.put(&mut cache, s);
        }
        cache.drain_into(&pool);
        assert_eq!(pool.pooled(), pool.mapped());
        // SAFETY: every stack is still mapped (the pool holds it).
        let zeroed = tops
            .iter()
            .filter(|&&t| unsafe { (t as *const u64).read_volatile() } == 0);
        assert!(zeroed.count() >= 200);
    }

    #[test]
    fn drop_unmaps_everything() {
        // In a child: no other thread can map into the freed ranges.
        let status = in_child(|| {
            let pool = StackPool::new(16 << 10).unwrap();
            let mut cache = StackCache::new();
            let mut live: Vec<Stack> = (0..300).map(|_| pool.get(&mut cache).unwrap()).collect();
            live.push(Stack::new(1 << 20).unwrap());
            let ranges: Vec<_> = live.iter().map(range).collect();
            for s in live.drain(100..200) {
                pool.put(&mut cache, s);
            }
            cache.drain_into(&pool);
            for s in live.drain(100..150) {
                pool.put(&mut cache, s);
            }
            drop(pool);
            // Live stacks keep their slabs mapped past the pool.
            if maps_overlapping(&ranges) == 0 {
                return 1;
            }
            drop(cache);
            drop(live);
            match maps_overlapping(&ranges) {
                0 => 0,
                _ => 2,
            }
        });
        assert_eq!(status, 0);
    }

    #[test]
    fn mprotect_fallback() {
        let status = in_child(|| {
            GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
            let pool = StackPool::new(16 << 10).unwrap();
            let mut cache = StackCache::new();
            let s = pool.get(&mut cache).unwrap();
            // Every guard splits the slab: guard + body per stack.
            let slab = (s.limit, s.limit + pool.slab_len() * (s.base - s.limit));
            if maps_overlapping(&[slab]) < 2 * pool.slab_len() {
                return 1;
            }
            write_guard(&s);
            2
        });
        assert!(died_by(status, libc::SIGSEGV), "status {status:#x}");
    }

    #[test]
    fn runs_a_coroutine() {
        use corosensei::{Coroutine, CoroutineResult};
        fn depth(n: u64) -> u64 {
            let buf = std::hint::black_box([n as u8; 256]);
            if n == 0 {
                u64::from(buf[0])
            } else {
                n + depth(n - 1)
            }
        }
        let pool = StackPool::new(64 << 10).unwrap();
        let mut cache = StackCache::new();
        for _ in 0..3 {
            let stack = pool.get(&mut cache).unwrap();
            let mut co = Coroutine::with_stack(stack, |y: &corosensei::Yielder<u64, u64>, n| {
                let m = y.suspend(depth(n));
                depth(m)
            });
            assert_eq!(co.resume(20), CoroutineResult::Yield(210));
            assert_eq!(co.resume(30), CoroutineResult::Return(465));
            pool.put(&mut cache, co.into_stack());
        }
    }

    #[test]
    #[ignore = "timing report; run with --release --ignored --nocapture"]
    fn timings() {
        let pool = StackPool::new(64 << 10).unwrap();
        let mut cache = StackCache::new();
        let s = pool.get(&mut cache).unwrap();
        pool.put(&mut cache, s);
        let n = 10_000_000;
        let t = Instant::now();
        for _ in 0..n {
            let s = pool.get(&mut cache).unwrap();
            pool.put(&mut cache, std::hint::black_box(s));
        }
        println!(
            "pooled get+put: {:.1} ns",
            t.elapsed().as_nanos() as f64 / n as f64
        );

        let pool = StackPool::new(64 << 10).unwrap();
        let n = 64 * 200;
        let mut keep = Vec::with_capacity(n);
        let t = Instant::now();
        for _ in 0..n {
            keep.push(pool.get(&mut cache).unwrap());
        }
        let e = t.elapsed();
        println!(
            "carve: {:.0} ns/stack (guards free: {})",
            e.as_nanos() as f64 / n as f64,
            guards_are_free()
        );
        let t = Instant::now();
        drop(keep);
        println!(
            "drop: {:.0} ns/stack",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
