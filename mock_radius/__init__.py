"""A scriptable mock RADIUS server for testing MFA clients."""
