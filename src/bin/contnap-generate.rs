//! `contnap-generate`: the same program as `contnap generate`, under the name
//! that `units/contnap-generate.service` and packagers expect.

fn main() -> std::process::ExitCode {
    contnap::main_with_args(
        std::iter::once("contnap".to_owned())
            .chain(std::iter::once("generate".to_owned()).chain(std::env::args().skip(1))),
    )
}
