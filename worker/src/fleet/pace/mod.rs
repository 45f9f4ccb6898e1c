//! How fast a worker goes (DESIGN §8): its slots of two kinds ([`slots`]),
//! the gaps and rates between sessions ([`pacing`]), and the backing off
//! from targets that say "not now" ([`retry`]).

pub mod pacing;
pub mod retry;
pub mod slots;
