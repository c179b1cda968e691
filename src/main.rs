// mimalloc: in the gateway's profile glibc's malloc/free (with its consolidation passes) took
// about 8% of the CPU; mimalloc's thread-local free lists make the per-request allocations cheap.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mediagate::cli::main()
}
