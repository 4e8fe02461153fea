"""What the site shows: macros and tables built from the release data."""
