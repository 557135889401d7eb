//! Generates the message types from `proto/` (the repository's single source
//! of the control-plane schema): prost for the types, pbjson for their
//! protobuf-JSON form. `protox` compiles the schema in Rust, so no `protoc`
//! is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("wasmcloud/runtime/v2/types.proto"),
        root.join("wasmcloud/runtime/v2/host.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("descriptors.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    prost_build::Config::new()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        // Maps in a stable order, so encoded messages and logs are stable.
        .btree_map(["."])
        // Timestamps by our own type: pbjson-types writes `+00:00`, and
        // protobuf-JSON (and the reference) write `Z`.
        .extern_path(".google.protobuf.Timestamp", "crate::Timestamp")
        // Printed by hand: a pull secret's password never reaches a log.
        .skip_debug([".wasmcloud.runtime.v2.ImagePullSecret"])
        .compile_protos(&files, &[&root])?;

    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor_path)?)?
        .btree_map(["."])
        // A newer peer may send fields this version does not know: they are
        // skipped, as they would be in the binary encoding.
        .ignore_unknown_fields()
        .build(&[".wasmcloud"])?;
    Ok(())
}
