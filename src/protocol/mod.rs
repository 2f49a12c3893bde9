//! The pairing protocol, free of I/O: the code, the wire codec, the key
//! schedule, the payload and the state machine that ties them together; and
//! the locate protocol that finds a paired peer again ([`locate`]).
//! [`crate::transport`] drives it over real sockets.

pub mod code;
pub mod codec;
pub mod locate;
pub mod machine;
pub mod payload;
pub mod repair;
pub mod schedule;
pub mod words;

pub use code::Code;
pub use machine::{Config, Destination, Event, Machine, Transmit};
