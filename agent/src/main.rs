//! The `cloudy` command: console commands and `cloudy daemon`.
fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
