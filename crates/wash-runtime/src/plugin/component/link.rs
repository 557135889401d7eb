//! A plugin's exports as a workload's imports: each function forwards to
//! the plugin's instance (another store), and each resource is a host
//! resource whose handle indexes the plugin's table.

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, ResourceDynamic, ResourceType, Val};

use super::InterfaceExports;
use super::runtime::{FunctionExport, PluginRuntime, PluginVal};
use crate::instance::StoreState;

/// Defines `import` in `linker` as the plugin's `interface`, calls made on
/// behalf of `caller` (the workload id).
pub(crate) fn link_interface(
    linker: &mut Linker<StoreState>,
    import: &str,
    interface: &InterfaceExports,
    runtime: Arc<PluginRuntime>,
    caller: Arc<str>,
) -> wasmtime::Result<()> {
    let mut instance = linker.instance(import)?;
    for (name, id) in &interface.resources {
        let runtime = runtime.clone();
        instance.resource_async(name, ResourceType::host_dynamic(*id), move |_, rep| {
            let runtime = runtime.clone();
            Box::new(async move {
                runtime
                    .drop_resource(rep)
                    .await
                    .map_err(wasmtime::Error::new)
            })
        })?;
    }
    for function in &interface.functions {
        // One shared target per function: a call clones one `Arc`, not three.
        let target = Arc::new(Target {
            runtime: runtime.clone(),
            function: function.clone(),
            caller: caller.clone(),
        });
        instance.func_new_async(
            &function.name.clone(),
            move |mut store, _, params, results| {
                let target = target.clone();
                Box::new(async move {
                    let Target {
                        runtime,
                        function,
                        caller,
                    } = &*target;
                    if function.plain {
                        return runtime
                            .call_plain(caller, function, params, results)
                            .await
                            .map_err(wasmtime::Error::new);
                    }
                    let params = params
                        .iter()
                        .map(|v| to_plugin(v.clone(), &mut store))
                        .collect::<wasmtime::Result<Vec<_>>>()?;
                    let out = runtime
                        .call(Some(caller), function, params)
                        .await
                        .map_err(wasmtime::Error::new)?;
                    for (slot, value) in results.iter_mut().zip(out) {
                        *slot = to_workload(value, &mut store)?;
                    }
                    Ok(())
                })
            },
        )?;
    }
    Ok(())
}

/// What a linked function calls: the plugin, its export, for whom.
struct Target {
    runtime: Arc<PluginRuntime>,
    function: FunctionExport,
    caller: Arc<str>,
}

/// A workload's value on its way to the plugin: its resources are ours
/// (host resources whose rep is a handle into the plugin's table).
fn to_plugin(val: Val, store: &mut StoreContextMut<'_, StoreState>) -> wasmtime::Result<PluginVal> {
    let mut go = |v: Val| to_plugin(v, store);
    Ok(match val {
        Val::Resource(resource) => {
            let resource = ResourceDynamic::try_from_resource_any(resource, &mut *store)?;
            PluginVal::Resource {
                rep: resource.rep(),
                ty: resource.ty(),
                owned: resource.owned(),
            }
        }
        Val::List(items) => PluginVal::List(items.into_iter().map(go).collect::<Result<_, _>>()?),
        Val::Record(fields) => PluginVal::Record(
            fields
                .into_iter()
                .map(|(n, v)| Ok((n, go(v)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Val::Tuple(items) => PluginVal::Tuple(items.into_iter().map(go).collect::<Result<_, _>>()?),
        Val::Variant(case, v) => {
            PluginVal::Variant(case, v.map(|v| go(*v)).transpose()?.map(Box::new))
        }
        Val::Option(v) => PluginVal::Option(v.map(|v| go(*v)).transpose()?.map(Box::new)),
        Val::Result(Ok(v)) => PluginVal::Result(Ok(v.map(|v| go(*v)).transpose()?.map(Box::new))),
        Val::Result(Err(v)) => PluginVal::Result(Err(v.map(|v| go(*v)).transpose()?.map(Box::new))),
        other => PluginVal::Plain(other),
    })
}

/// The plugin's value on its way back to the workload: resources it gave
/// out become the workload's own handles.
fn to_workload(
    val: PluginVal,
    store: &mut StoreContextMut<'_, StoreState>,
) -> wasmtime::Result<Val> {
    let mut go = |v: PluginVal| to_workload(v, store);
    Ok(match val {
        PluginVal::Plain(v) => v,
        PluginVal::Resource { rep, ty, owned } => {
            let resource = if owned {
                ResourceDynamic::new_own(rep, ty)
            } else {
                ResourceDynamic::new_borrow(rep, ty)
            };
            Val::Resource(resource.try_into_resource_any(&mut *store)?)
        }
        PluginVal::List(items) => Val::List(items.into_iter().map(go).collect::<Result<_, _>>()?),
        PluginVal::Record(fields) => Val::Record(
            fields
                .into_iter()
                .map(|(n, v)| Ok((n, go(v)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        PluginVal::Tuple(items) => Val::Tuple(items.into_iter().map(go).collect::<Result<_, _>>()?),
        PluginVal::Variant(case, v) => {
            Val::Variant(case, v.map(|v| go(*v)).transpose()?.map(Box::new))
        }
        PluginVal::Option(v) => Val::Option(v.map(|v| go(*v)).transpose()?.map(Box::new)),
        PluginVal::Result(Ok(v)) => Val::Result(Ok(v.map(|v| go(*v)).transpose()?.map(Box::new))),
        PluginVal::Result(Err(v)) => Val::Result(Err(v.map(|v| go(*v)).transpose()?.map(Box::new))),
    })
}
