fn main() -> std::process::ExitCode {
    mediagate::cli::main()
}
