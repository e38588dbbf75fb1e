//! The `outband-device` command line (work in progress).
