//! `wash inspect`: a component's WIT world, or a WIT package, with the
//! provenance recorded in its metadata.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use wit_component::WitPrinter;
use wit_parser::{Resolve, WorldItem, WorldKey};

use crate::cli::GlobalArgs;
use crate::output;
use crate::wit::package::{self, Provenance, Wasm};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component or binary WIT package (.wasm file) to inspect.
    pub component: PathBuf,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Component,
    WitPackage,
}

#[derive(Debug, Serialize)]
struct Inspection {
    file: String,
    kind: Kind,
    /// The package's name, for a WIT package.
    #[serde(skip_serializing_if = "Option::is_none")]
    package: Option<String>,
    /// The component's world.
    #[serde(skip_serializing_if = "Option::is_none")]
    world: Option<String>,
    imports: Vec<String>,
    exports: Vec<String>,
    provenance: Provenance,
    wit: String,
}

impl Inspection {
    fn text(&self) -> String {
        let mut out = String::new();
        let lines = self.provenance.lines();
        if !lines.is_empty() {
            for line in lines {
                out.push_str(&format!("// {line}\n"));
            }
            out.push('\n');
        }
        out.push_str(self.wit.trim_end());
        out
    }
}

pub async fn run(global: &GlobalArgs, args: InspectArgs) -> Result<()> {
    let path = &args.component;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let inspection = inspect(&bytes).with_context(|| format!("{}", path.display()))?;
    let inspection = Inspection {
        file: path.display().to_string(),
        ..inspection
    };
    output::emit(global.output, || inspection.text(), &inspection);
    Ok(())
}

fn inspect(bytes: &[u8]) -> Result<Inspection> {
    let decoded = package::decode_any(bytes)?;
    let provenance = package::provenance_of(bytes)?;
    match decoded {
        Wasm::Package(resolved) => {
            let wit = package::wit_text(&resolved.resolve, resolved.package)?;
            Ok(Inspection {
                file: String::new(),
                kind: Kind::WitPackage,
                package: Some(resolved.name().to_string()),
                world: None,
                imports: Vec::new(),
                exports: package::exports(&resolved),
                provenance,
                wit,
            })
        }
        Wasm::Component(resolve, world_id) => {
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
                kind: Kind::Component,
                package: None,
                world: Some(world.name.clone()),
                imports,
                exports,
                provenance,
                wit: printer.output.to_string(),
            })
        }
    }
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
