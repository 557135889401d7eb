//! Host directories behind a workload's volumes.

use std::path::PathBuf;
use std::sync::Arc;

use super::HostError;
use crate::types::{VolumeSource, Workload};

/// Host directories for the workload's volumes, creating scratch ones.
#[allow(clippy::type_complexity, reason = "a local pair of lists")]
pub(crate) fn prepare_volumes(
    workload: &Workload,
) -> Result<(Arc<Vec<(String, PathBuf)>>, Vec<tempfile::TempDir>), HostError> {
    let mut paths = Vec::new();
    let mut scratch = Vec::new();
    for volume in &workload.volumes {
        let error = |reason: String| HostError::Volume {
            workload: workload.name.clone(),
            volume: volume.name.clone(),
            reason,
        };
        let path = match &volume.source {
            VolumeSource::HostPath { local_path } => {
                let path = PathBuf::from(local_path);
                if !path.is_dir() {
                    return Err(error(format!(
                        "host path `{local_path}` is not a directory"
                    )));
                }
                path
            }
            VolumeSource::EmptyDir {} => {
                let dir = tempfile::Builder::new()
                    .prefix("wash-volume-")
                    .tempdir()
                    .map_err(|e| error(format!("cannot create scratch directory: {e}")))?;
                let path = dir.path().to_path_buf();
                scratch.push(dir);
                path
            }
        };
        paths.push((volume.name.clone(), path));
    }
    Ok((Arc::new(paths), scratch))
}
