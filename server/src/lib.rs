//! outband-server (under construction)
