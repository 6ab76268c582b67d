//! The configuration parser on arbitrary UTF-8: it never panics, and it returns either a
//! configuration or an error listing at least one problem.

#![no_main]

use std::path::Path;

use hubgate::config::Config;
use hubgate::path::check_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(config) => {
            assert!(!config.routes.is_empty());
            for route in &config.routes {
                // Every prefix is a canonical path that requests can match exactly.
                assert_eq!(check_path(&route.prefix), Ok(route.prefix.as_str()));
                assert!(config.upstreams.contains_key(&route.upstream));
            }
        }
        Err(error) => {
            assert!(!error.problems.is_empty(), "an error without problems");
            assert_eq!(error.file, "fuzz.toml");
        }
    }
});
