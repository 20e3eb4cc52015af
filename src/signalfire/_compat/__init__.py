"""Every use of another library's internals, one module per library, each with a contract test."""
