"""MFA methods: plain async logic with no HTTP in it."""
