//! `google.protobuf.Timestamp`, in the protobuf-JSON form: RFC 3339 in UTC
//! with a `Z`, with 0, 3, 6 or 9 fractional digits as needed; offsets are
//! accepted on input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
        }
    }
}

impl Timestamp {
    /// The time, if it is after the epoch and in range.
    pub fn to_system_time(self) -> Option<SystemTime> {
        let seconds = u64::try_from(self.seconds).ok()?;
        let nanos = u32::try_from(self.nanos).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
    }

    fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.seconds, u32::try_from(self.nanos).ok()?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_datetime() {
            Some(time) => {
                serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            None => Err(serde::ser::Error::custom(format!(
                "timestamp out of range: {}s {}ns",
                self.seconds, self.nanos
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let time = DateTime::parse_from_rfc3339(&text)
            .map_err(|e| D::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))?;
        Ok(Self {
            seconds: time.timestamp(),
            nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_with_z_and_as_many_digits_as_needed() {
        let at = |seconds, nanos| serde_json::to_value(Timestamp { seconds, nanos }).unwrap();
        assert_eq!(at(1_764_000_000, 0), "2025-11-24T16:00:00Z");
        assert_eq!(at(1_764_000_000, 500_000_000), "2025-11-24T16:00:00.500Z");
        assert_eq!(at(1_764_000_000, 1), "2025-11-24T16:00:00.000000001Z");
    }

    #[test]
    fn read_with_offsets() {
        let read: Timestamp = serde_json::from_value("2025-11-24T17:00:00.5+01:00".into()).unwrap();
        assert_eq!(
            read,
            Timestamp {
                seconds: 1_764_000_000,
                nanos: 500_000_000
            }
        );
        assert!(serde_json::from_value::<Timestamp>("yesterday".into()).is_err());
    }
}
