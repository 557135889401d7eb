//! The control-plane messages of `proto/wasmcloud/runtime/v2`, generated
//! from the schema: hosts answer `runtime.host.<id>.<operation>` and send
//! heartbeats on `runtime.operator.heartbeat.<id>`, each message in its
//! protobuf-JSON form (lowerCamelCase names, snake_case accepted on input,
//! defaults left out, 64-bit integers as strings, enums by name, timestamps
//! in RFC 3339).
//!
//! This crate is shared by the host (`wash-runtime`) and the operator, and
//! links nothing else: the operator never pulls in wasmtime.
//!
//! ```
//! use runtime_proto::v2::{WorkloadState, WorkloadStatus};
//!
//! let status: WorkloadStatus = serde_json::from_str(
//!     r#"{"workloadId": "wl-1", "workloadState": "WORKLOAD_STATE_RUNNING"}"#,
//! )?;
//! assert_eq!(status.workload_state(), WorkloadState::Running);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod timestamp;

pub use timestamp::Timestamp;

/// Package `wasmcloud.runtime.v2`.
#[allow(
    missing_docs,
    clippy::all,
    reason = "generated from proto/, which documents the fields"
)]
pub mod v2 {
    include!(concat!(env!("OUT_DIR"), "/wasmcloud.runtime.v2.rs"));
    include!(concat!(env!("OUT_DIR"), "/wasmcloud.runtime.v2.serde.rs"));

    impl std::fmt::Debug for ImagePullSecret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ImagePullSecret")
                .field("username", &self.username)
                .field("password", &"<redacted>")
                .finish()
        }
    }
}

/// Subjects of the control plane.
pub mod subjects {
    /// Where a host answers `operation` (e.g. `workload.start`).
    pub fn host(host_id: &str, operation: &str) -> String {
        format!("runtime.host.{host_id}.{operation}")
    }

    /// Where a host publishes its heartbeats.
    pub fn heartbeat(host_id: &str) -> String {
        format!("runtime.operator.heartbeat.{host_id}")
    }

    /// Every host's heartbeats, for an operator to subscribe to.
    pub const HEARTBEATS: &str = "runtime.operator.heartbeat.>";
}
