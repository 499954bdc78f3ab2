//! The emulator integration tests, as one test binary (`integration`): each file of this
//! directory is a module named after it, so `cargo test --workspace --locked --test
//! integration cleanup::` runs the tests of `cleanup.rs`. One binary links the AWS SDK
//! once instead of once per file, and libtest runs the tests of all the files on its test
//! threads, not one file after the other. Every test starts its own emulator
//! ([`ami_sim::Emulator`], a free loopback port) and passes its configuration explicitly
//! (no test sets an environment variable or changes the current directory), so tests of
//! different files can share the process. [`common`] holds the helpers several files use.

mod common;

mod accounts;
mod cleanup;
mod cleanup_staged;
mod convergence;
mod create_image;
mod cross_account;
mod emulator_smoke;
mod estate_report;
mod fanout;
mod migrate;
mod publish;
mod quiesce;
mod recycle_bin;
mod reliability_crash;
mod reliability_duplicates;
mod reliability_faults;
mod replicate;
mod replicate_convergence;
mod security;
mod share;
