//! Test fixture: an HTTP component that imports `example:missing/greeter`,
//! which no host provides. Starting it must fail naming that interface.

wit_bindgen::generate!({
    inline: r#"
        package example:missing@0.1.0;
        interface greeter {
            greet: func(name: string) -> string;
        }
        world fixture {
            import greeter;
        }
    "#,
});

use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    Ok(Response::new(
        example::missing::greeter::greet("wash").into(),
    ))
}
