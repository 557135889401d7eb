//! Test fixture: a command component. It exports `wasi:cli/run`, not an HTTP
//! handler, so serving it over HTTP must fail with a clear error.

fn main() {
    println!("hello from a command component");
}
