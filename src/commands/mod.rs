//! The commands: the edge of the program, where errors become messages
//! and exit statuses and the library modules meet the user.

pub mod hooks;
pub mod list;
pub mod pair;
pub mod recover;
pub mod refresh;
pub mod remove;
pub mod serve;
pub mod sync;
pub mod watch;
