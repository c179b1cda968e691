// mimalloc: in the gateway's profile glibc's malloc/free (with its consolidation passes) took
// about 8% of the CPU; mimalloc's thread-local free lists make the per-request allocations cheap.
// Wrapped to count the event loops' allocations when MEDIAGATE_COUNT_ALLOCATIONS=1
// (observe::allocations; off, it costs one relaxed load per allocation).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mediagate::observe::allocations::Counting<mimalloc::MiMalloc> =
    mediagate::observe::allocations::Counting(mimalloc::MiMalloc);
#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: mediagate::observe::allocations::Counting<std::alloc::System> =
    mediagate::observe::allocations::Counting(std::alloc::System);

fn main() -> std::process::ExitCode {
    mediagate::cli::main()
}
