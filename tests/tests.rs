//! All integration tests in one binary (one link step); each module covers one subcommand or area.

mod smtp;
mod util;

mod abtest;
mod campaign;
mod demo_data;
mod flows;
mod list_health;
mod preferences;
mod quality;
mod retail;
mod serve;
mod timestamps;
mod train;
mod validate;
mod workspace;
