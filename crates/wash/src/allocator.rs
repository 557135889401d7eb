//! The process's allocator: mimalloc, entered the way the system allocator
//! is. `mimalloc::MiMalloc` sends every request through mimalloc's aligned
//! entry point, which serves a block over 1 KiB whose size class is not a
//! power of two (1,792 bytes, say) by over-allocating and marking its page
//! as holding aligned blocks, and every free on such a page takes the slow
//! path. Requests that need no more than the 16 bytes every mimalloc block
//! is aligned to go to plain `mi_malloc` instead, as `std`'s system
//! allocator does with `malloc`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as ffi;

/// The largest alignment every mimalloc block of at least that size has
/// (`MI_MAX_ALIGN_SIZE` on 64-bit targets).
const MIN_ALIGN: usize = 16;

/// mimalloc, with plain entry points where the alignment allows.
pub struct Allocator;

/// Whether a block of `size` bytes from plain `mi_malloc` is aligned to
/// `align`: blocks smaller than 16 bytes are aligned to their size class
/// (a power of two at least `align`, since Rust sizes are multiples of
/// their alignment), larger ones to 16.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every pointer handed out comes from mimalloc with at least the
// layout's alignment (plain entry points only where `plain` shows that
// mimalloc's own guarantee covers it), and goes back to mimalloc.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc accepts any size; a null return is passed on.
        unsafe {
            if plain(layout.align(), layout.size()) {
                ffi::mi_malloc(layout.size()).cast()
            } else {
                ffi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                ffi::mi_zalloc(layout.size()).cast()
            } else {
                ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc, which
        // frees blocks of either entry point alike.
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe {
            if plain(layout.align(), new_size) {
                ffi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_their_layout_asks_for() {
        for (size, align) in [
            (1, 1),
            (8, 8),
            (24, 8),
            (1776, 8),
            (48, 16),
            (64, 64),
            (4096, 4096),
        ] {
            let layout = Layout::from_size_align(size, align).expect("a valid layout");
            // SAFETY: a non-zero size; the block goes back with its layout.
            unsafe {
                let p = Allocator.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{size} bytes at alignment {align}");
                let q = Allocator.realloc(p, layout, size * 3);
                assert_eq!(
                    q as usize % align,
                    0,
                    "{size} bytes grown, alignment {align}"
                );
                Allocator.dealloc(q, Layout::from_size_align(size * 3, align).expect("valid"));
                let z = Allocator.alloc_zeroed(layout);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                Allocator.dealloc(z, layout);
            }
        }
    }
}
