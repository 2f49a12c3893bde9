//! The commands: the edge of the program, where errors become messages
//! and exit statuses and the library modules meet the user.

pub mod pair;
pub mod serve;
