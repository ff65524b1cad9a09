"""Example -> tokens + labels (one code path), diagnostics and the token view."""
