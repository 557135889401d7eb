//! `wash inspect`: a component's WIT world.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldItem, WorldKey};

use crate::cli::GlobalArgs;
use crate::output;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm file) to inspect.
    pub component: PathBuf,
}

#[derive(Debug, Serialize)]
struct Inspection {
    file: String,
    world: String,
    imports: Vec<String>,
    exports: Vec<String>,
    wit: String,
}

pub async fn run(global: &GlobalArgs, args: InspectArgs) -> Result<()> {
    let path = &args.component;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let inspection = inspect(&bytes).with_context(|| format!("{}", path.display()))?;
    let inspection = Inspection {
        file: path.display().to_string(),
        ..inspection
    };
    output::emit(
        global.output,
        || inspection.wit.trim_end().to_string(),
        &inspection,
    );
    Ok(())
}

fn inspect(bytes: &[u8]) -> Result<Inspection> {
    if !bytes.starts_with(b"\0asm") {
        bail!("not a WebAssembly binary (it does not start with the `\\0asm` magic)");
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        bail!("is a core WebAssembly module, not a component");
    }
    let (resolve, world_id) = match wit_component::decode(bytes).context("invalid component")? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => bail!("is a WIT package, not a component"),
    };
    let world = &resolve.worlds[world_id];
    let imports = names(&resolve, world.imports.iter());
    let exports = names(&resolve, world.exports.iter());
    let mut printer = WitPrinter::default();
    let package = world
        .package
        .context("decoded world belongs to no package")?;
    printer.print(&resolve, package, &[])?;
    Ok(Inspection {
        file: String::new(),
        world: world.name.clone(),
        imports,
        exports,
        wit: printer.output.to_string(),
    })
}

/// Names of a world's interfaces and functions (types are left out).
fn names<'a>(
    resolve: &Resolve,
    items: impl Iterator<Item = (&'a WorldKey, &'a WorldItem)>,
) -> Vec<String> {
    items
        .filter(|(_, item)| !matches!(item, WorldItem::Type { .. }))
        .map(|(key, _)| item_name(resolve, key))
        .collect()
}

fn item_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => resolve
            .id_of(*id)
            .unwrap_or_else(|| resolve.name_world_key(key)),
    }
}
