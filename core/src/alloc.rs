//! Heap accounting for the per-evaluation memory budget.
//!
//! [`Counting`] wraps any global allocator and counts, per thread, the bytes
//! the thread allocates and frees. The Rego evaluator reads these counters at
//! the start of an evaluation and at every guarded builtin call; when the
//! thread's heap has grown by more than `rego.max_eval_bytes` the evaluation
//! fails closed (see docs/bundle.md, "Evaluation limits").
//!
//! The CLI and the Python and Node modules install it around mimalloc. A Rust
//! host that wants the memory budget installs it around its own allocator:
//!
//! ```
//! use agentriage::alloc::Counting;
//!
//! #[global_allocator]
//! static GLOBAL: Counting<std::alloc::System> = Counting::new(std::alloc::System);
//! # fn main() {}
//! ```
//!
//! Without it the counters stay at zero and only the builtin output limits
//! (which need no allocator support) apply.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// The bytes one thread allocated and freed through [`Counting`].
struct Counts {
    allocated: Cell<u64>,
    freed: Cell<u64>,
}

thread_local! {
    // Constant-initialized and without a destructor: reading it never
    // allocates and never fails, which an allocator requires, and each
    // access is a plain thread-local load (no lazy-initialization check).
    static COUNTS: Counts = const {
        Counts {
            allocated: Cell::new(0),
            freed: Cell::new(0),
        }
    };
}

/// `bytes` as a counter increment (saturating where `usize` is wider).
#[inline(always)]
fn amount(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

// The counting functions are inlined into each allocator method: one
// thread-local access per call, no call through a key reference (an
// allocation is made thousands of times a decision).
// `try_with` rather than `with`: an allocation during thread teardown must
// not panic inside the allocator.

#[inline(always)]
fn count_allocated(bytes: usize) {
    let _ = COUNTS.try_with(|c| {
        c.allocated
            .set(c.allocated.get().wrapping_add(amount(bytes)))
    });
}

#[inline(always)]
fn count_freed(bytes: usize) {
    let _ = COUNTS.try_with(|c| c.freed.set(c.freed.get().wrapping_add(amount(bytes))));
}

#[inline(always)]
fn count_reallocated(old: usize, new: usize) {
    let _ = COUNTS.try_with(|c| {
        c.freed.set(c.freed.get().wrapping_add(amount(old)));
        c.allocated.set(c.allocated.get().wrapping_add(amount(new)));
    });
}

/// A global allocator that forwards to `A` and counts, per thread, the
/// bytes allocated and freed.
///
/// The counting costs one thread-local access per allocator call; the
/// counters are read by [`thread_heap_bytes`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting<A> {
    inner: A,
}

impl<A> Counting<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Counting<A> {
        Counting { inner }
    }
}

// The one `unsafe` block of the library: `GlobalAlloc` is an unsafe trait.
// Every method forwards to the wrapped allocator with the caller's own
// arguments, so the wrapper adds no obligation beyond those `A` already has.
#[allow(
    unsafe_code,
    reason = "a global allocator must implement the unsafe `GlobalAlloc` trait; each method only forwards to the wrapped allocator"
)]
// SAFETY: the methods forward to `A` unchanged, and `A: GlobalAlloc`
// upholds the trait's contract; the counters never allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            count_allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on unchanged.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count_allocated(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { self.inner.dealloc(ptr, layout) };
        count_freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count_reallocated(layout.size(), new_size);
        }
        new
    }
}

/// Bytes this thread has allocated and freed so far through [`Counting`]
/// (both zero when [`Counting`] is not the global allocator). Their
/// difference, taken at two points, is how much the thread's heap grew
/// between them.
pub fn thread_heap_bytes() -> (u64, u64) {
    COUNTS
        .try_with(|c| (c.allocated.get(), c.freed.get()))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Each allocator method counts its own bytes on the calling thread: an
    /// allocation its size, a free its size, a reallocation both sides.
    #[test]
    #[allow(
        unsafe_code,
        reason = "calls the allocator's methods directly, as a global allocator's caller would"
    )]
    fn each_allocator_call_counts_its_bytes_on_its_thread() {
        let counting = Counting::new(std::alloc::System);
        let small = Layout::from_size_align(100, 8).unwrap();
        let large = Layout::from_size_align(300, 8).unwrap();
        let (allocated, freed) = thread_heap_bytes();
        // SAFETY: each layout has a non-zero size; each pointer is freed
        // once, with the layout it was last allocated with.
        unsafe {
            let p = counting.alloc(small);
            assert!(!p.is_null());
            let p = counting.realloc(p, small, large.size());
            assert!(!p.is_null());
            counting.dealloc(p, large);
            let z = counting.alloc_zeroed(small);
            assert!(!z.is_null());
            counting.dealloc(z, small);
        }
        let (allocated_now, freed_now) = thread_heap_bytes();
        assert_eq!(allocated_now - allocated, 100 + 300 + 100);
        assert_eq!(freed_now - freed, 100 + 300 + 100);
    }
}
