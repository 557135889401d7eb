//! How the bench fixtures time calls from inside the guest: in batches of
//! [`BATCH`], reporting the mean over all calls and the fastest batch,
//! which a burst of load elsewhere on the machine is least likely to have
//! hit.

use std::time::Instant;

/// Calls timed together.
pub const BATCH: u32 = 1000;

/// Makes `n` (at least one) calls of `call`; the mean ns per call and that
/// of the fastest batch, or the first error.
pub fn time<E>(n: u32, mut call: impl FnMut() -> Result<(), E>) -> Result<(u128, u128), E> {
    let n = n.max(1);
    let mut total = 0u128;
    let mut fastest = u128::MAX;
    let mut left = n;
    while left > 0 {
        let batch = left.min(BATCH);
        let started = Instant::now();
        for _ in 0..batch {
            call()?;
        }
        let elapsed = started.elapsed().as_nanos();
        total += elapsed;
        fastest = fastest.min(elapsed / u128::from(batch));
        left -= batch;
    }
    Ok((total / u128::from(n), fastest))
}
