//! Printing results: text for people, JSON for scripts. Results go to
//! stdout; progress and logs go to stderr.

use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints `value` as JSON, or `text` for people.
pub fn emit<T: Serialize>(format: OutputFormat, text: impl FnOnce() -> String, value: &T) {
    match format {
        OutputFormat::Text => println!("{}", text()),
        OutputFormat::Json => match serde_json::to_string(value) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot encode output as JSON: {e}"),
        },
    }
}

/// A spinner on stderr while long work runs, shown only on a terminal.
pub fn spinner(message: impl Into<String>) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message.into());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A byte progress bar on stderr, shown only on a terminal.
pub fn progress_bar(message: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}
