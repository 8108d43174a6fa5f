//! The `cloudy` command: console commands and `cloudy daemon`
//! (see `cloudy help`). All the work is in the library.

fn main() -> std::process::ExitCode {
    cloudy::console::cli::main(
        std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
}
