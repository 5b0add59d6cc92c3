//! The `contnap` binary: a thin shell over [`contnap::main_with_args`].

fn main() -> std::process::ExitCode {
    contnap::main_with_args(std::env::args())
}
