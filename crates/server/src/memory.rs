//! Handing the memory a policy load freed back to the operating system.
//!
//! A load allocates little beyond what the compiled policy keeps (the matcher is built in
//! a table of its final size, the list files are read in pieces), but a reload holds the
//! old policy while the new one is built, and what the old one held is then freed.
//! glibc's allocator keeps much of what is freed: after the first large
//! block is freed it raises its mmap threshold to that block's size (up to 32 MiB), so
//! the next blocks of that size come from its heap, and freed heap memory below the top
//! is never returned. With a million-name list, fixing the threshold and trimming the
//! heap after the load took about a quarter off the RSS after load, where jemalloc and
//! mimalloc as drop-in allocators did worse (the figures are kept in `bench/memory.sh`'s
//! header, the one place they are), so winsink keeps glibc's and tunes it:
//!
//! - [`tune`], once at start: a fixed mmap threshold (128 KiB, glibc's default before it
//!   adapts), so every large block — a policy's tables — is its own mapping, returned
//!   whole when freed, by whichever thread drops the last reference to the policy;
//! - [`release_freed`] after each load and reload: `malloc_trim(0)`, which returns the
//!   free pages of every arena's heap (what the small blocks of a load left behind).
//!
//! Both are no-ops on other C libraries.

/// Fixes glibc's mmap threshold; call once, before the first policy load.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; any value is valid and the call
    // has no memory-safety preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns the free pages of the allocator's heaps to the operating system.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it has no
    // preconditions and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
